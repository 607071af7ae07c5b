"""tools/train_seg.py with a user's own ADE20K-layout data, checkpoints and overrides: the right
result, or one line `error: ...` (exit code 2) naming the file, key or setting."""
import collections
import csv
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from conftest import ROOT, tiny_mae_kwargs, user_error
from mmengine.config import Config
from mmseg.registry import MODELS, TRANSFORMS
from PIL import Image

import seg  # (registers the modules)
import seg.train as train_seg
from common import cli as _cli
from common.checkpoint_files import CheckpointError, load_file
from common.errors import UserError
from pretrain import MaskedAutoencoder, build_mae
from reproduction.toy_data import write_ade20k

BACKBONE = dict(type="MAEViT", img_size=64, patch_size=8, embed_dim=64, depth=4, num_heads=4, out_indices=(0, 1, 2, 3))


def test_unknown_override_keys_are_refused_with_close_matches():
    line = user_error("train_seg.py", "--cfg", "seg/upernet_vit_tiny.py", "--init", "none", "model.backbone.dept=3")
    assert "unknown override key 'model.backbone.dept'; did you mean 'model.backbone.depth'" in line
    cfg = Config.fromfile(os.path.join(ROOT, "configs/seg/upernet_vit_tiny.py"))
    with pytest.raises(UserError, match="unknown override key 'foo'"):
        _cli.check_override_keys(cfg, ["foo"], train_seg.registered_type(cfg))
    # arguments of what a node builds, and the Runner's own, are settings though the file leaves them out
    _cli.check_override_keys(cfg, ["model.backbone.grad_checkpointing", "train_cfg.val_begin", "auto_scale_lr"],
                        train_seg.registered_type(cfg))


def test_init_cfg_pretrained_goes_through_the_mae_mapping(tmp_path):
    path = tmp_path / "mae.pth"
    mae = MaskedAutoencoder(**tiny_mae_kwargs(depth=4))
    torch.save({"model": mae.state_dict()}, path)
    backbone = MODELS.build(dict(BACKBONE, init_cfg=dict(type="Pretrained", checkpoint=str(path))))
    backbone.init_weights()
    torch.testing.assert_close(backbone.vit.blocks[3].mlp.fc2.weight, mae.blocks[3].mlp.fc2.weight)
    shallow = tmp_path / "shallow.pth"
    torch.save({"model": MaskedAutoencoder(**tiny_mae_kwargs(depth=2)).state_dict()}, shallow)
    with pytest.raises(UserError, match=f"{shallow} does not match the model; missing keys: blocks.2"):
        MODELS.build(dict(BACKBONE, init_cfg=dict(type="Pretrained", checkpoint=str(shallow)))).init_weights()


def load_annotation(img, seg_map, num_classes=5):
    pipeline = [TRANSFORMS.build(t) for t in (dict(type="LoadImageFromFile"), dict(type="LoadAnnotations", reduce_zero_label=True),
                                              dict(type="CheckSegMap", num_classes=num_classes, reduce_zero_label=True))]
    results = dict(img_path=str(img), seg_map_path=str(seg_map), reduce_zero_label=True, seg_fields=[])
    for transform in pipeline:
        results = transform(results)
    return results


def test_annotations_are_checked_as_they_are_read(tmp_path):
    Image.fromarray(np.zeros((32, 48, 3), np.uint8)).save(tmp_path / "a.jpg")
    good = np.tile(np.arange(6, dtype=np.uint8), (32, 8))  # values 0 (ignored) to 5: classes 0-4
    Image.fromarray(good).save(tmp_path / "good.png")
    assert load_annotation(tmp_path / "a.jpg", tmp_path / "good.png")["gt_seg_map"].max() == 255
    Image.fromarray(good[:, :40]).save(tmp_path / "small.png")
    with pytest.raises(UserError, match=r"annotation .*small.png is 40x32 but its image .*a.jpg is 48x32"):
        load_annotation(tmp_path / "a.jpg", tmp_path / "small.png")
    Image.fromarray(np.stack([good] * 3, -1)).save(tmp_path / "rgb.png")
    with pytest.raises(UserError, match=r"annotation .*rgb.png has 3 channels"):
        load_annotation(tmp_path / "a.jpg", tmp_path / "rgb.png")
    Image.fromarray(np.where(good == 5, 151, good).astype(np.uint8)).save(tmp_path / "beyond.png")
    with pytest.raises(UserError, match=r"annotation .*beyond.png has values \[151\] beyond the config's 5 classes"):
        load_annotation(tmp_path / "a.jpg", tmp_path / "beyond.png")


def test_images_without_annotations_are_named_at_start_up(tmp_path):
    root = write_ade20k(str(tmp_path / "ade"), num_train=3, num_val=2, size=32, seed=1)
    os.remove(os.path.join(root, "annotations", "training", sorted(os.listdir(os.path.join(root, "annotations", "training")))[0]))
    cfg = Config.fromfile(os.path.join(ROOT, "configs/seg/upernet_vit_tiny.py"))
    for loader in ("train_dataloader", "val_dataloader"):
        cfg[loader]["dataset"]["data_root"] = root
    with pytest.raises(FileNotFoundError, match=r"1 images in .*images/training have no annotation"):
        train_seg.check_data(cfg)


def test_a_run_validates_once_writes_atomically_and_refuses_another_models_checkpoint(tmp_path):
    data = write_ade20k(str(tmp_path / "ade"), num_train=4, num_val=2, size=64, seed=2)
    mae = tmp_path / "mae.pth"
    torch.save({"model": build_mae("mae_vit_tiny_patch16", patch_size=8, depth=4, img_size=64, decoder_depth=1).state_dict()}, mae)
    run = tmp_path / "run"
    common = [sys.executable, os.path.join(ROOT, "tools", "train_seg.py"), "--cfg", "seg/upernet_vit_tiny.py",
              "--data-root", data, "--output-dir", str(run)]
    result = subprocess.run([*common, "--init", str(mae), "train_cfg.max_iters=2", "train_cfg.val_interval=2",
                             "default_hooks.checkpoint.interval=2", "train_dataloader.batch_size=2"],
                            capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0, result.stderr[-3000:]
    log = result.stdout + result.stderr
    assert sum("Iter(val) [2/2]" in line and "mIoU" in line for line in log.splitlines()) == 1, log[-3000:]
    with open(run / "results.csv") as f:
        assert [r["iteration"] for r in csv.DictReader(f)] == ["2"]
    checkpoint = run / "iter_2.pth"
    umask = os.umask(0)
    os.umask(umask)
    assert os.stat(checkpoint).st_mode & 0o777 == 0o666 & ~umask
    assert not [f for f in os.listdir(run) if f.startswith(".tmp-")]
    line = user_error(*common[1:], "--eval-only", checkpoint, "model.decode_head.channels=64")
    assert f"{checkpoint} was written for another model" in line and "decode_head" in line
    with seg.mmengine_checkpoint_globals():  # the allow-list of mmengine's plain data is scoped to a load
        assert load_file(str(checkpoint))["meta"]["iter"] == 2


def test_mmengine_checkpoints_are_written_atomically(tmp_path):
    import mmengine.runner.runner as runner_module

    path = tmp_path / "iter_1.pth"
    runner_module.save_checkpoint({"meta": {"iter": 1}, "state_dict": {"w": torch.ones(1)}}, str(path))

    class Unwritable:
        def __reduce__(self):
            raise OSError(28, "No space left on device")

    with pytest.raises(UserError, match=f"cannot write checkpoint {path}: no space left on the device"):
        runner_module.save_checkpoint({"meta": {"iter": 2}, "state_dict": {"w": Unwritable()}}, str(path))
    assert load_file(str(path))["meta"]["iter"] == 1 and os.listdir(tmp_path) == ["iter_1.pth"]


def test_checkpoint_safety_changes_mmengine_and_torch_only_while_a_checkpoint_is_written_or_loaded(tmp_path):
    import mmengine.runner.checkpoint as checkpoint_module
    import mmengine.runner.runner as runner_module
    from mmengine.logging import HistoryBuffer

    original = HistoryBuffer.__getstate__
    assert original.__module__ == "mmengine.logging.history_buffer"  # importing seg left it as it was
    process_wide = torch.serialization.get_safe_globals()  # what other libraries allow-list
    assert HistoryBuffer not in process_wide
    seen = {}

    class Spy:  # pickled inside the checkpoint: what is patched at that moment
        def __reduce__(self):
            seen["getstate"] = HistoryBuffer.__getstate__
            return (collections.OrderedDict, ())

    buffer = HistoryBuffer()
    buffer.update(1.5)
    path = tmp_path / "iter_1.pth"
    runner_module.save_checkpoint({"meta": {"iter": 1}, "message_hub": {"loss": buffer}, "spy": Spy()}, str(path))
    assert seen["getstate"] is not original  # the statistics functions are left out while writing ...
    assert HistoryBuffer.__getstate__ is original and "statistics_methods" not in buffer.__dict__  # ... only then
    assert torch.serialization.get_safe_globals() == process_wide
    with pytest.raises(CheckpointError, match="HistoryBuffer"):  # not allow-listed outside a load
        load_file(str(path))
    loaded = checkpoint_module._load_checkpoint(str(path))  # mmengine's loading, as Runner.load_checkpoint calls it
    assert runner_module._load_checkpoint is checkpoint_module._load_checkpoint
    assert loaded["meta"]["iter"] == 1 and loaded["message_hub"]["loss"].current() == 1.5
    assert loaded["message_hub"]["loss"].mean() == 1.5  # the default statistics rebuilt on load
    assert torch.serialization.get_safe_globals() == process_wide


def test_an_ade_layout_of_png_images_trains_and_records_its_row(tmp_path):
    data = write_ade20k(str(tmp_path / "ade"), num_train=4, num_val=2, size=64, seed=2, image_suffix=".png")
    training = os.path.join(data, "images", "training")
    first, second = sorted(os.listdir(training))[:2]
    with Image.open(os.path.join(training, first)) as img:  # PNG modes a JPEG has not: transparency, 16 bits
        rgba = img.convert("RGBA")
    rgba.putalpha(128)
    rgba.save(os.path.join(training, first))
    with Image.open(os.path.join(training, second)) as img:
        Image.fromarray(np.asarray(img.convert("L"), np.uint16) * 257).save(os.path.join(training, second))
    for name in (first, second):  # as the training pipeline reads them: 8-bit, 3 channels
        loaded = load_annotation(os.path.join(training, name), os.path.join(data, "annotations", "training", name))
        assert loaded["img"].shape == (64, 64, 3) and loaded["img"].dtype == np.uint8
    run = tmp_path / "run"
    result = subprocess.run([sys.executable, os.path.join(ROOT, "tools", "train_seg.py"), "--cfg", "seg/upernet_vit_tiny.py",
                             "--init", "none", "--data-root", data, "--output-dir", str(run), "train_cfg.max_iters=2",
                             "train_cfg.val_interval=2", "train_dataloader.batch_size=2"],
                            capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0, result.stderr[-3000:]
    with open(run / "results.csv") as f:
        assert [r["iteration"] for r in csv.DictReader(f)] == ["2"]


def test_image_folders_without_one_image_extension_are_refused(tmp_path):
    data = write_ade20k(str(tmp_path / "ade"), num_train=3, num_val=1, size=32, seed=1, image_suffix=".gif")
    line = user_error("train_seg.py", "--cfg", "seg/upernet_vit_tiny.py", "--init", "none", "--data-root", data)
    assert line == (f"error: segmentation data folder {data}/images/training holds no images "
                    f"(.jpg .jpeg .png .bmp .webp .tif .tiff) but 3 .gif; expected {train_seg.ADE_LAYOUT}")
    data = write_ade20k(str(tmp_path / "mixed"), num_train=3, num_val=1, size=32, seed=1)
    with Image.open(os.path.join(data, "images", "training", "ADE_train_00000001.jpg")) as img:
        img.save(os.path.join(data, "images", "training", "ADE_train_00000004.png"))
    cfg = Config.fromfile(os.path.join(ROOT, "configs/seg/upernet_vit_tiny.py"))
    for loader in ("train_dataloader", "val_dataloader"):
        cfg[loader]["dataset"]["data_root"] = data
    with pytest.raises(UserError, match=r"images/training holds images of several extensions \(3 .jpg, 1 .png\)"):
        train_seg.check_data(cfg)


@pytest.mark.parametrize("form", [
    ["--cfg-options", "model.backbone.init_cfg=dict(type='Pretrained', checkpoint='{}')"],
    ["model.backbone.init_cfg.checkpoint={}"],
    ["--cfg-options", "model.backbone.init_cfg={{'type': 'Pretrained', 'checkpoint': '{}'}}"],
], ids=["cfg-options dict()", "dotted", "dict literal"])
def test_mmengine_forms_of_init_cfg_go_through_the_mae_mapping(tmp_path, form):
    data = write_ade20k(str(tmp_path / "ade"), num_train=2, num_val=1, size=64, seed=2)
    shallow = tmp_path / "shallow.pth"  # mmengine's own Pretrained would load it partially, with warnings only
    torch.save({"model": build_mae("mae_vit_tiny_patch16", patch_size=8, depth=2, img_size=64, decoder_depth=1).state_dict()},
               shallow)
    line = user_error("train_seg.py", "--cfg", "seg/upernet_vit_tiny.py", "--data-root", data, "--output-dir",
                      tmp_path / "run", *form[:-1], form[-1].format(shallow))
    assert f"{shallow} does not match the model; missing keys: blocks.2" in line


def test_overrides_are_read_as_mmengine_reads_them_or_refused():
    assert train_seg.parse_overrides(["val_evaluator.iou_metrics=[mIoU,mDice]", "a=true", "b=/my runs/x.pth",
                                      "c=(0,1)", "d=dict(type='BN', requires_grad=True)"]) == {
        "val_evaluator.iou_metrics": ["mIoU", "mDice"], "a": True, "b": "/my runs/x.pth", "c": (0, 1),
        "d": {"type": "BN", "requires_grad": True}}
    line = user_error("train_seg.py", "--cfg", "seg/upernet_vit_tiny.py",
                      "model.backbone.init_cfg=dict(type=Pretrained, checkpoint=/x.pth)")
    assert line == ("error: override model.backbone.init_cfg=dict(type=Pretrained, checkpoint=/x.pth) cannot be read: write "
                    "a Python literal, its strings quoted, as in \"model.backbone.init_cfg=dict(type='Pretrained', "
                    "checkpoint='PATH')\"")


def test_a_segmentation_run_refuses_a_folder_another_run_holds(tmp_path):
    from common.run_lock import owned_output_dir

    data = write_ade20k(str(tmp_path / "ade"), num_train=4, num_val=2, size=64, seed=2)
    run = tmp_path / "run"
    with owned_output_dir(str(run)):
        line = user_error("train_seg.py", "--cfg", "seg/upernet_vit_tiny.py", "--data-root", data, "--output-dir", run,
                          "--init", "none", "train_cfg.max_iters=1")
    assert line.startswith(f"error: {run} is in use by another run (host ") and f"pid {os.getpid()}," in line
    assert os.listdir(run) == []  # refused before mmengine's Runner wrote its logs there


def test_a_launcher_without_the_environment_it_reads_is_one_line(tmp_path, monkeypatch):
    from seg.distributed import chosen_launcher

    for name in ("WORLD_SIZE", "RANK", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT", "SLURM_PROCID", "SLURM_NTASKS",
                 "SLURM_LOCALID", "SLURM_NODELIST"):
        monkeypatch.delenv(name, raising=False)
    data = write_ade20k(str(tmp_path / "ade"), num_train=2, num_val=1, size=64, seed=2)
    line = user_error("train_seg.py", "--cfg", "seg/upernet_vit_tiny.py", "--data-root", data, "--output-dir",
                      tmp_path / "run", "--init", "none", "--launcher", "slurm")
    assert line == ("error: --launcher slurm reads SLURM_PROCID, SLURM_NTASKS, SLURM_LOCALID, SLURM_NODELIST from the "
                    "environment, which is not set: start the tool with srun (one task per process) tools/train_seg.py "
                    "--launcher slurm ...")
    with pytest.raises(UserError, match="--launcher pytorch reads RANK, LOCAL_RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT"):
        chosen_launcher("pytorch")
    assert chosen_launcher(None) == "none"
    for name, value in dict(WORLD_SIZE="2", RANK="0", LOCAL_RANK="0", MASTER_ADDR="127.0.0.1", MASTER_PORT="29500").items():
        monkeypatch.setenv(name, value)
    assert chosen_launcher(None) == "pytorch"  # what torchrun started
    with pytest.raises(UserError, match="--launcher none in one of torchrun's 2 processes: each would train alone"):
        chosen_launcher("none")
