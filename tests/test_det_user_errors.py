"""tools/train_det.py with a user's own COCO files, checkpoints and overrides: the right set-up, or
one line `error: ...` (exit code 2) naming the file, key or setting."""
import csv
import json
import os
import re
import subprocess
import sys

import pytest
import torch
from conftest import ROOT, user_error
from detectron2.config import instantiate

from common.checkpoint_files import CheckpointError, load_file
from common.errors import UserError
from det.train import build_config, checked_checkpoint
from pretrain import build_mae
from reproduction.toy_data import write_coco
from tools import train_det

TINY_DET_MAE = dict(patch_size=8, depth=4, img_size=64, decoder_depth=1, decoder_embed_dim=32, decoder_num_heads=4)


@pytest.fixture(scope="module")
def coco(tmp_path_factory):
    return write_coco(str(tmp_path_factory.mktemp("coco")), num_train=4, num_val=2, size=128, seed=3)


@pytest.fixture(scope="module")
def mae_checkpoint(tmp_path_factory):
    """An MAE checkpoint whose encoder fits configs/det/mask_rcnn_vit_tiny.py."""
    path = tmp_path_factory.mktemp("mae") / "mae.pth"
    torch.save({"model": build_mae("mae_vit_tiny_patch16", **TINY_DET_MAE).state_dict()}, path)
    return str(path)


def edited(tmp_path, split, coco, change):
    """A copy of a split's COCO json with change(data) applied: -> NAME=JSON:IMAGES for --dataset."""
    json_file, images = coco[split]
    with open(json_file) as f:
        data = json.load(f)
    change(data)
    path = tmp_path / f"{split}.json"
    path.write_text(json.dumps(data))
    return f"{tmp_path.name}_{split}={path}:{images}"


def unedited(tmp_path, split, coco):
    return edited(tmp_path, split, coco, lambda data: None)


def config(tmp_path, train, val, *extra):
    names = [spec.partition("=")[0] for spec in (train, val)]
    args = train_det.parse_args(["--cfg", "det/mask_rcnn_vit_tiny.py", "--dataset", train, "--dataset", val,
                                 "--output-dir", str(tmp_path / "run"), f"dataloader.train.dataset.names={names[0]}",
                                 f"dataloader.test.dataset.names={names[1]}", *extra])
    return build_config(args)


def keep_three_categories(data):
    data["categories"] = [c for c in data["categories"] if c["id"] <= 3]
    data["annotations"] = [a for a in data["annotations"] if a["category_id"] <= 3]


def test_the_class_count_comes_from_the_data_and_train_and_val_must_agree(tmp_path, coco):
    cfg = config(tmp_path, edited(tmp_path, "train", coco, keep_three_categories),
                 edited(tmp_path, "val", coco, keep_three_categories), "--init", "none")
    assert cfg.model.roi_heads.num_classes == 3  # the config says 5
    assert instantiate(cfg.model).roi_heads.box_predictor.cls_score.out_features == 4  # 3 + background
    other = tmp_path / "other"
    other.mkdir()
    with pytest.raises(UserError, match=r"train.json, 3 categories\) and .*val.json, 5 categories\) have different"):
        config(other, edited(other, "train", coco, keep_three_categories), unedited(other, "val", coco), "--init", "none")


@pytest.mark.parametrize("problem, message", [
    (lambda d: d.pop("annotations"), r"train.json has no 'annotations' list"),
    (lambda d: d["annotations"][0].update(category_id=42), r"train.json annotation \d+ has category_id 42"),
    (lambda d: d["annotations"][0].update(segmentation={"size": [128, 128], "counts": "PPYo1"}),
     r"train.json annotation \d+ \(image \d+\) is an RLE mask with iscrowd=0"),
])
def test_coco_json_problems_are_named_at_start_up(tmp_path, coco, problem, message):
    with pytest.raises(UserError, match=message):
        config(tmp_path, edited(tmp_path, "train", coco, problem), unedited(tmp_path, "val", coco), "--init", "none")


def test_overrides_must_name_a_setting(tmp_path, coco):
    train, val = unedited(tmp_path, "train", coco), unedited(tmp_path, "val", coco)
    with pytest.raises(UserError, match=r"unknown override key 'train.max_ite'; did you mean 'train.max_iter'"):
        config(tmp_path, train, val, "--init", "none", "train.max_ite=5")
    with pytest.raises(UserError, match=r"unknown override key 'foo'"):
        config(tmp_path, train, val, "--init", "none", "foo=1")
    # an argument of the class a node builds is a setting too, though the config file leaves it out
    cfg = config(tmp_path, train, val, "--init", "none", "model.backbone.vit.grad_checkpointing=True")
    assert cfg.model.backbone.vit.grad_checkpointing is True


def test_train_init_checkpoint_goes_through_the_mae_mapping_and_is_reported(tmp_path, coco, mae_checkpoint):
    train, val = unedited(tmp_path, "train", coco), unedited(tmp_path, "val", coco)
    cfg = config(tmp_path, train, val, f"train.init_checkpoint={mae_checkpoint}")
    assert cfg.model.backbone.vit.init_checkpoint == mae_checkpoint and cfg.train.init_checkpoint == ""
    with pytest.raises(UserError, match="two initial checkpoints given"):
        config(tmp_path, train, val, "--init", "other.pth", f"train.init_checkpoint={mae_checkpoint}")
    with pytest.raises(UserError, match="no initial checkpoint was given, and --resume auto found no checkpoint"):
        config(tmp_path, train, val, "--resume")
    names = [spec.partition("=")[0] for spec in (train, val)]
    result = subprocess.run(
        [sys.executable, os.path.join(ROOT, "tools", "train_det.py"), "--cfg", "det/mask_rcnn_vit_tiny.py",
         "--dataset", train, "--dataset", val, "--output-dir", str(tmp_path / "run"), "--eval-only", "init",
         f"dataloader.train.dataset.names={names[0]}", f"dataloader.test.dataset.names={names[1]}",
         f"train.init_checkpoint={mae_checkpoint}"], capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0, result.stderr[-3000:]
    log = result.stdout + result.stderr
    assert re.search(rf"backbone init from {re.escape(mae_checkpoint)}: loaded \d+ tensors; dropped", log), log[-3000:]
    assert "Initializing model from scratch" not in log
    with open(tmp_path / "run" / "results.csv") as f:
        assert next(csv.DictReader(f))["pretrain_checkpoint"] == mae_checkpoint


def test_wrong_or_truncated_checkpoints_are_one_line(tmp_path, coco, mae_checkpoint):
    train, val = unedited(tmp_path, "train", coco), unedited(tmp_path, "val", coco)
    names = [spec.partition("=")[0] for spec in (train, val)]
    common = ("train_det.py", "--cfg", "det/mask_rcnn_vit_tiny.py", "--dataset", train, "--dataset", val,
              f"dataloader.train.dataset.names={names[0]}", f"dataloader.test.dataset.names={names[1]}",
              "--output-dir", tmp_path / "run", "--eval-only", "init")
    shallow = tmp_path / "shallow.pth"
    torch.save({"model": build_mae("mae_vit_tiny_patch16", **dict(TINY_DET_MAE, depth=2)).state_dict()}, shallow)
    line = user_error(*common, "--init", shallow)
    assert f"{shallow} does not match the model; missing keys: blocks.2." in line
    truncated = tmp_path / "truncated.pth"
    truncated.write_bytes(open(mae_checkpoint, "rb").read()[:5000])
    assert f"cannot load checkpoint {truncated} (truncated" in user_error(*common, "--init", truncated)
    assert load_file(mae_checkpoint)["model"]["pos_embed"].shape[-1] == 192  # the good one still loads
    # a detector checkpoint of another model, to resume or evaluate
    cfg = config(tmp_path, train, val, "--init", "none")
    model = instantiate(cfg.model)
    other = {k: v for k, v in model.state_dict().items() if not k.startswith("roi_heads.mask_head")}
    torch.save({"model": other, "iteration": 9}, tmp_path / "other.pth")
    with pytest.raises(CheckpointError, match=r"other.pth was written for another model \(\d+ missing keys \(roi_heads.mask_head"):
        checked_checkpoint(model, str(tmp_path / "other.pth"))


def test_detectron2_checkpoints_are_written_atomically_with_a_normal_mode(tmp_path):
    from det.checkpoint import AtomicCheckpointer

    checkpointer = AtomicCheckpointer(torch.nn.Linear(2, 2), str(tmp_path))
    checkpointer.save("model_0000009", iteration=9)
    umask = os.umask(0)
    os.umask(umask)
    assert os.stat(tmp_path / "model_0000009.pth").st_mode & 0o777 == 0o666 & ~umask
    assert sorted(os.listdir(tmp_path)) == ["last_checkpoint", "model_0000009.pth"]
    assert checkpointer.get_checkpoint_file() == str(tmp_path / "model_0000009.pth")
    assert load_file(checkpointer.get_checkpoint_file())["iteration"] == 9


def test_a_bad_init_for_several_processes_is_one_line_before_any_worker_starts(tmp_path, coco):
    train, val = unedited(tmp_path, "train", coco), unedited(tmp_path, "val", coco)
    names = [spec.partition("=")[0] for spec in (train, val)]
    shallow = tmp_path / "shallow.pth"
    torch.save({"model": build_mae("mae_vit_tiny_patch16", **dict(TINY_DET_MAE, depth=2)).state_dict()}, shallow)
    line = user_error("train_det.py", "--cfg", "det/mask_rcnn_vit_tiny.py", "--dataset", train, "--dataset", val,
                      f"dataloader.train.dataset.names={names[0]}", f"dataloader.test.dataset.names={names[1]}",
                      "--output-dir", tmp_path / "run", "--init", shallow, "--num-gpus", "2")
    assert f"{shallow} does not match the model; missing keys: blocks.2." in line


def test_a_detection_run_refuses_a_folder_another_run_holds(tmp_path, coco):
    from common.run_lock import owned_output_dir

    train, val = unedited(tmp_path, "train", coco), unedited(tmp_path, "val", coco)
    names = [spec.partition("=")[0] for spec in (train, val)]
    run = tmp_path / "run"
    with owned_output_dir(str(run)):
        line = user_error("train_det.py", "--cfg", "det/mask_rcnn_vit_tiny.py", "--dataset", train, "--dataset", val,
                          f"dataloader.train.dataset.names={names[0]}", f"dataloader.test.dataset.names={names[1]}",
                          "--output-dir", run, "--init", "none", "train.max_iter=1")
    assert line.startswith(f"error: {run} is in use by another run (host ") and f"pid {os.getpid()}," in line
    assert os.listdir(run) == []


def test_a_process_count_the_batch_does_not_split_over_is_one_line_before_any_starts(tmp_path, coco):
    train, val = unedited(tmp_path, "train", coco), unedited(tmp_path, "val", coco)
    names = [spec.partition("=")[0] for spec in (train, val)]
    line = user_error("train_det.py", "--cfg", "det/mask_rcnn_vit_tiny.py", "--dataset", train, "--dataset", val,
                      f"dataloader.train.dataset.names={names[0]}", f"dataloader.test.dataset.names={names[1]}",
                      "--output-dir", tmp_path / "run", "--init", "none", "--num-processes", "3")
    assert line == ("error: dataloader.train.total_batch_size=4 does not split over 3 processes (each takes total / "
                    "processes): make it a multiple of 3")
    with pytest.raises(UserError, match=r"argument --num-gpus/--num-processes: 0 is out of range: it must be in \[1, inf\)"):
        train_det.parse_args(["--cfg", "det/mask_rcnn_vit_tiny.py", "--num-gpus", "0"])
