"""The classification recipe as the official MAE code defines it (facebookresearch/mae): evaluation
resize, the TF-style crop of linear probing, LARS, the accumulation schedule, the package API."""
import math
import os

import pytest
import torch
from PIL import Image
from torchvision import transforms

from cls_transfer.config import ClsConfig, load_cls_config
from cls_transfer.engine import ClsTrainer
from cls_transfer.lars import LARS
from cls_transfer.transforms import TFRandomResizedCrop, eval_transform
from common.training import cosine_lr
from reproduction.toy_data import write_classification_sets

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_build_dataset_is_importable_from_the_package(tmp_path):
    from cls_transfer import build_dataset

    with pytest.raises(FileNotFoundError, match="expected layout"):
        build_dataset("imagenet", str(tmp_path / "none"), "train")


@pytest.mark.parametrize("size, resize", [(224, 256), (448, 448), (64, 73)])
def test_evaluation_resizes_as_the_official_code(size, resize):
    """util/datasets.py: crop ratio 224/256 up to 224 px, 1.0 above."""
    resize_step, crop_step = eval_transform(ClsConfig(input_size=size)).transforms[:2]
    assert resize_step.size == resize and crop_step.size == (size, size)
    h448 = load_cls_config(os.path.join(ROOT, "configs/cls/finetune_vit_h_448.py"))
    assert eval_transform(h448).transforms[0].size == 448


def test_tf_style_crop_draws_larger_boxes_than_torchvision():
    """One draw, clipped to the image (util/crop.py), where torchvision's redraw-until-it-fits favours
    small boxes: on a 2:1 image the mean area fraction is 0.46 against torchvision's 0.30 (measured
    with 20,000 draws each; 4,000 draws here have a standard error of 0.005)."""
    torch.manual_seed(0)
    crop, tv = TFRandomResizedCrop(32), transforms.RandomResizedCrop(32)
    img = Image.new("RGB", (400, 200))
    tf_boxes = [crop.crop_box(400, 200) for _ in range(4000)]
    tv_boxes = [tv.get_params(img, tv.scale, tv.ratio) for _ in range(4000)]
    assert all(0 <= t and 0 <= left and t + h <= 200 and left + w <= 400 for t, left, h, w in tf_boxes)
    tf_area = sum(h * w for _, _, h, w in tf_boxes) / 4000 / (400 * 200)
    tv_area = sum(h * w for _, _, h, w in tv_boxes) / 4000 / (400 * 200)
    assert 0.44 < tf_area < 0.48 and 0.28 < tv_area < 0.33, (tf_area, tv_area)
    assert crop(img).size == (32, 32)


def test_lars_exempts_1d_parameters_and_uses_the_decayed_gradient_in_the_trust_ratio():
    torch.manual_seed(0)
    w, b = torch.nn.Parameter(torch.randn(4, 3)), torch.nn.Parameter(torch.randn(4))
    w0, b0 = w.detach().clone(), b.detach().clone()
    optimizer = LARS([w, b], lr=0.1, weight_decay=0.05, momentum=0.9, trust_coefficient=0.001)
    gw, gb = torch.randn(4, 3), torch.randn(4)
    w.grad, b.grad = gw.clone(), gb.clone()
    optimizer.step()
    u = gw + 0.05 * w0
    expected_w = w0 - 0.1 * (0.001 * w0.norm() / u.norm()) * u
    torch.testing.assert_close(w.detach(), expected_w)
    torch.testing.assert_close(b.detach(), b0 - 0.1 * gb)  # no decay, no adaptation
    optimizer.step()  # momentum: mu = 0.9 mu + update
    u2 = gw + 0.05 * expected_w
    mu = 0.9 * (0.001 * w0.norm() / u.norm()) * u + (0.001 * expected_w.norm() / u2.norm()) * u2
    torch.testing.assert_close(w.detach(), expected_w - 0.1 * mu)
    zero = torch.nn.Parameter(torch.zeros(2, 2))
    zero.grad = torch.ones(2, 2)
    LARS([zero], lr=1.0).step()  # ||w|| = 0: trust ratio 1
    torch.testing.assert_close(zero.detach(), -torch.ones(2, 2))


def test_accumulation_schedule_divides_by_the_loader_length(tmp_path):
    """engine_finetune.py: lr at epoch + batch / len(data_loader), set every accum_iter batches;
    5 batches with accum_iter 2: steps after batches 2 and 4 at lr(0/5), lr(2/5); batch 5 runs, unstepped."""
    torch.set_num_threads(1)
    data = write_classification_sets(str(tmp_path / "cls"), num_train=40, num_val=10, size=32, seed=1)["imagenet"]
    items = dict(mode="scratch", data_root=data, output_dir=str(tmp_path / "run"), results_csv=str(tmp_path / "c.csv"),
                 backbone_overrides=dict(patch_size=8, depth=1), input_size=32, batch_size=8, total_batch_size=16,
                 epochs=2, warmup_epochs=1, num_workers=0, auto_augment="", blr=1e-3, min_lr=0.0, precision="fp32")
    trainer = ClsTrainer(load_cls_config(os.path.join(ROOT, "configs/cls/scratch_tiny_cpu.py"),
                                         [f"{k}={v!r}" for k, v in items.items()]))
    assert len(trainer.loader) == 5 and trainer.accum_iter == 2
    stepped, step = [], trainer.optimizer_step

    def record():
        stepped.append(trainer.optimizer.param_groups[0]["lr"])
        step()

    trainer.optimizer_step = record
    trainer.train()
    expected = [cosine_lr(e + i / 5, trainer.lr, 1, 2, 0.0) for e in (0, 1) for i in (0, 2)]
    assert stepped == pytest.approx(expected) and not math.isclose(stepped[1], cosine_lr(0.5, trainer.lr, 1, 2))
