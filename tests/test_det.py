"""The MAE ViT in Detectron2: both pyramid adapters, layer decay, checkpoints, and Mask R-CNN
trained for real on a generated COCO-format set."""
import csv
import os
import subprocess
import sys

import pytest
import torch
from detectron2.config import LazyConfig, instantiate

from conftest import tiny_mae_kwargs
from det.backbone import ViTBackbone, vit_fpn, vit_simple_pyramid
from backbones import resample_pos_embed
from det.optim import layer_decay_params
from pretrain import MaskedAutoencoder
from reproduction.toy_data import CLASSES, write_coco

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
VIT = dict(img_size=128, patch_size=16, embed_dim=64, depth=4, num_heads=4, window_size=4)


@pytest.mark.parametrize("adapter", [vit_fpn, vit_simple_pyramid])
def test_adapters_give_the_strides_and_channels_the_heads_expect(adapter):
    backbone = adapter(ViTBackbone(**VIT, multi_scale=adapter is vit_fpn), out_channels=32, square_pad=128)
    shapes = backbone.output_shape()
    assert {k: (v.stride, v.channels) for k, v in shapes.items()} == {
        "p2": (4, 32), "p3": (8, 32), "p4": (16, 32), "p5": (32, 32), "p6": (64, 32)}
    outs = backbone(torch.randn(2, 3, 128, 128))
    assert {k: tuple(v.shape[-2:]) for k, v in outs.items()} == {
        "p2": (32, 32), "p3": (16, 16), "p4": (8, 8), "p5": (4, 4), "p6": (2, 2)}


def test_groups_are_windowed_with_a_global_last_block():
    vit = ViTBackbone(**dict(VIT, depth=8))
    assert vit.group_ends == (1, 3, 5, 7)
    assert [b.window_size for b in vit.vit.blocks] == [4, 0, 4, 0, 4, 0, 4, 0]
    assert all(b.attn.rel_pos_h.abs().sum() == 0 for b in vit.vit.blocks)


def test_official_checkpoint_loads_every_encoder_key_and_keeps_the_pretraining_table(tmp_path):
    mae = MaskedAutoencoder(**tiny_mae_kwargs(patch_size=16, img_size=224, depth=4))  # 14x14 pre-training grid
    path = tmp_path / "mae.pth"
    torch.save({"model": mae.state_dict()}, path)
    vit = ViTBackbone(**VIT)
    report = vit.load_pretrained(str(path))
    encoder = {k for k in mae.state_dict() if not k.startswith(("decoder", "mask_token", "norm.", "cls_token"))}
    assert set(report.loaded) == encoder
    assert {"cls_token", "norm.weight", "decoder_embed.weight", "mask_token"} <= set(report.dropped)
    assert report.resampled == []  # ViTDet: the 14x14 table is kept and interpolated in every forward
    torch.testing.assert_close(vit.vit.pos_embed, mae.pos_embed, rtol=0, atol=0)
    for size in (128, 96):  # any input size: the same table, interpolated to the grid
        tokens, grid = vit.vit.embed(torch.zeros(1, 3, size, size))
        expected = resample_pos_embed(mae.pos_embed, grid)[:, 1:] + vit.vit.patch_embed.proj.bias
        torch.testing.assert_close(tokens, expected.expand_as(tokens))
    # the former behaviour, one resampling at load into a table for the detection grid, on request
    report = ViTBackbone(**VIT, pretrain_img_size=128).load_pretrained(str(path))
    assert report.resampled == ["pos_embed (1, 197, 64) -> (1, 65, 64)"]


def test_layer_decay_groups_follow_the_shared_rule():
    model = vit_fpn(ViTBackbone(**VIT), out_channels=32, square_pad=128)
    groups = layer_decay_params(model, base_lr=1e-4, weight_decay=0.1, layer_decay=0.5)
    lr = {n: g["lr"] for g in groups for n in g["param_names"]}
    assert lr["bottom_up.vit.blocks.3.mlp.fc1.weight"] == pytest.approx(1e-4 * 0.5)
    assert lr["bottom_up.vit.patch_embed.proj.weight"] == pytest.approx(1e-4 * 0.5**5)
    assert lr["fpn_output2.weight"] == pytest.approx(1e-4)
    wd = {n: g["weight_decay"] for g in groups for n in g["param_names"]}
    # ViTDet's rule: torch norm layers and pos_embed are exempt; biases, rel_pos and Detectron2's LN decay
    assert wd["bottom_up.vit.pos_embed"] == 0 and wd["bottom_up.vit.blocks.0.norm1.weight"] == 0
    assert wd["bottom_up.resample.resamplers.0.1.weight"] == 0  # the A.3 pyramid's LayerNorm2d is a torch LayerNorm
    for name in ("bottom_up.vit.blocks.0.attn.rel_pos_h", "bottom_up.vit.blocks.0.attn.qkv.weight",
                 "bottom_up.vit.blocks.0.attn.qkv.bias", "fpn_lateral2.norm.weight"):
        assert wd[name] == 0.1, name
    every = layer_decay_params(model, base_lr=1e-4, weight_decay=0.1, layer_decay=0.5, decay_rule="all")
    assert all(g["weight_decay"] == 0.1 for g in every)


def test_configs_carry_the_vitdet_recipe():
    # projects/ViTDet/configs/COCO/mask_rcnn_vitdet_{b_100ep,l_100ep,h_75ep}.py
    for name, dim, decay, drop, rule, iters, milestones in (
            ("b", 768, 0.7, 0.1, "vitdet", 184375, [163889, 177546]),
            ("l", 1024, 0.8, 0.4, "vitdet", 184375, [163889, 177546]),
            ("h", 1280, 0.9, 0.5, "all", 184375 * 3 // 4, [163889 * 3 // 4, 177546 * 3 // 4])):
        cfg = LazyConfig.load(os.path.join(ROOT, f"configs/det/mask_rcnn_vit_{name}.py"))
        vit = cfg.model.backbone.vit
        assert (vit.embed_dim, vit.drop_path_rate, cfg.optimizer.params.layer_decay) == (dim, drop, decay)
        assert cfg.optimizer.params.decay_rule == rule and vit.pretrain_img_size == 224
        assert cfg.optimizer.lr == 1e-4 and cfg.optimizer.weight_decay == 0.1 and cfg.dataloader.train.total_batch_size == 64
        assert cfg.train.max_iter == iters and cfg.lr_multiplier.scheduler.milestones == milestones
        assert cfg.lr_multiplier.scheduler.num_updates == iters and cfg.lr_multiplier.warmup_length == 250 / 184375
        assert cfg.train.eval_period == 5000 and cfg.train.checkpointer.period == 5000
    simple = LazyConfig.load(os.path.join(ROOT, "configs/det/mask_rcnn_vit_b_simple.py"))
    assert simple.model.backbone.vit.multi_scale is False
    model = instantiate(LazyConfig.load(os.path.join(ROOT, "configs/det/mask_rcnn_vit_tiny.py")).model)
    assert model.backbone.bottom_up.vit.patch_size == 8


def run_det(*args):
    result = subprocess.run([sys.executable, os.path.join(ROOT, "tools/train_det.py"), "--cfg", "det/mask_rcnn_vit_tiny.py",
                             *args], capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout + result.stderr


@pytest.mark.slow
def test_mask_rcnn_trains_and_eval_only_reproduces(tiny_mae_checkpoint, tmp_path):
    # the colour-coded classification classes: a learning check that 300 CPU iterations pass clearly
    splits = write_coco(str(tmp_path / "coco"), num_train=80, num_val=20, size=128, seed=3, categories=CLASSES)
    data = [f"--dataset=toy_coco_{s}={ann}:{img}" for s, (ann, img) in splits.items()]
    common = [*data, "--results-csv", str(tmp_path / "det.csv"), "--init", tiny_mae_checkpoint]
    run_det(*common, "--output-dir", str(tmp_path / "before"), "--eval-only", "init")
    run_det(*common, "--output-dir", str(tmp_path / "run"))
    run_det(*common, "--output-dir", str(tmp_path / "run"), "--eval-only", str(tmp_path / "run" / "model_final.pth"))
    resumed = run_det(*data, "--results-csv", str(tmp_path / "resumed.csv"), "--output-dir", str(tmp_path / "run"),
                      "--resume", "auto", "train.max_iter=310", "train.eval_period=1000")
    assert "Starting training from iteration 300" in resumed
    with open(tmp_path / "det.csv") as f:
        before, trained, evaluated = list(csv.DictReader(f))
    assert trained["iteration"] == "300" and trained["adapter"] == "groups"
    # measured here: box AP 0.001 -> 32.0, mask AP 0.001 -> 31.8 after 300 CPU iterations
    assert float(trained["ap_box"]) > float(before["ap_box"]) + 15, (before, trained)
    assert float(trained["ap_mask"]) > float(before["ap_mask"]) + 15, (before, trained)
    assert (evaluated["ap_box"], evaluated["ap_mask"]) == (trained["ap_box"], trained["ap_mask"])
    assert evaluated["iteration"] == "300"


def test_yacs_configs_build_the_backbone_through_the_registry():
    from detectron2.config import CfgNode, get_cfg
    from detectron2.modeling import build_backbone

    cfg = get_cfg()
    cfg.MODEL.BACKBONE.NAME = "build_mae_vit_backbone"
    cfg.MODEL.FPN.OUT_CHANNELS = 32
    cfg.MODEL.MAE_VIT = CfgNode(dict(ADAPTER="groups", IMG_SIZE=128, PATCH_SIZE=16, EMBED_DIM=64, DEPTH=4, NUM_HEADS=4,
                                     WINDOW_SIZE=4))
    backbone = build_backbone(cfg)
    assert isinstance(backbone.bottom_up, ViTBackbone)
    assert backbone(torch.randn(1, 3, 128, 128))["p2"].shape == (1, 32, 32, 32)


def test_8_px_patches_still_give_strides_4_to_32():
    backbone = vit_fpn(ViTBackbone(**dict(VIT, patch_size=8, window_size=8)), out_channels=32, square_pad=128)
    outs = backbone(torch.randn(1, 3, 128, 128))
    assert {k: tuple(v.shape[-2:]) for k, v in outs.items()} == {
        "p2": (32, 32), "p3": (16, 16), "p4": (8, 8), "p5": (4, 4), "p6": (2, 2)}
    with pytest.raises(ValueError, match="patch size 14 gives no power-of-two pyramid"):
        ViTBackbone(**dict(VIT, patch_size=14))


def test_patch_14_checkpoint_loads_into_a_16_px_detector(tmp_path):
    mae = MaskedAutoencoder(**tiny_mae_kwargs(patch_size=14, img_size=224, depth=4))  # 16x16 grid of 14 px
    path = tmp_path / "mae14.pth"
    torch.save({"model": mae.state_dict()}, path)
    report = ViTBackbone(**VIT).load_pretrained(str(path))
    assert "patch_embed.proj.weight (64, 3, 14, 14) -> (64, 3, 16, 16)" in report.resampled
    assert "pos_embed (1, 257, 64) -> (1, 197, 64)" in report.resampled  # to the 224 px table, as ViTDet's p14to16


@pytest.mark.parametrize("max_iter", [1000, 20000])
def test_run_length_is_one_setting_the_schedule_follows(max_iter):
    """Detectron2's LRMultiplier evaluates lr_multiplier at iter / train.max_iter: train.max_iter=N keeps
    ViTDet's warm-up and milestones at the same fractions of the run."""
    from detectron2.solver import LRMultiplier

    cfg = LazyConfig.load(os.path.join(ROOT, "configs/det/mask_rcnn_vit_b.py"))
    cfg = LazyConfig.apply_overrides(cfg, [f"train.max_iter={max_iter}"])
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    scheduler = LRMultiplier(optimizer, instantiate(cfg.lr_multiplier), cfg.train.max_iter)
    lrs = []
    for _ in range(max_iter):
        lrs.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    warm = next(i for i, lr in enumerate(lrs) if lr == 1.0)  # the end of the warm-up
    first_drop = next(i for i in range(warm, max_iter) if lrs[i] < 0.5)
    second_drop = next(i for i in range(warm, max_iter) if lrs[i] < 0.05)
    assert lrs[0] == pytest.approx(0.001) and abs(warm - max_iter * 250 / 184375) <= 1
    assert abs(first_drop - round(max_iter * 163889 / 184375)) <= 1
    assert abs(second_drop - round(max_iter * 177546 / 184375)) <= 1
    assert lrs[first_drop] == pytest.approx(0.1) and lrs[-1] == pytest.approx(0.01)
