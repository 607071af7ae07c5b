"""Classification transfer end to end on the CPU: a tiny MAE is pre-trained on generated scenes,
then fine-tuned and linearly probed on a generated labelled set (5 classes: chance is 20%)."""
import csv
import os
import subprocess
import sys

import pytest
import torch
from conftest import TINY_ENCODER

from cls_transfer.config import load_cls_config
from cls_transfer.engine import ClsTrainer
from common.errors import UserError
from reproduction.toy_data import write_classification_sets

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ENCODER = TINY_ENCODER


@pytest.fixture(scope="module")
def mae_checkpoint(tiny_mae_checkpoint):
    return tiny_mae_checkpoint


@pytest.fixture(scope="module")
def cls_data(tmp_path_factory):
    return write_classification_sets(str(tmp_path_factory.mktemp("cls")), num_train=400, num_val=100, size=64, seed=7)


def cls_cfg(tmp_path, data_root, **overrides):
    items = dict(data_root=data_root, output_dir=str(tmp_path / "run"), results_csv=str(tmp_path / "cls.csv"),
                 backbone_overrides=ENCODER, num_workers=0)
    items.update(overrides)
    return load_cls_config(os.path.join(ROOT, "configs/cls/tiny_cpu.py"), [f"{k}={v!r}" for k, v in items.items()])


def read_rows(path):
    with open(path) as f:
        return list(csv.DictReader(f))


@pytest.mark.slow
def test_fine_tuning_beats_chance_and_eval_only_reproduces_it(mae_checkpoint, cls_data, tmp_path):
    cfg = cls_cfg(tmp_path, cls_data["imagenet"], init=mae_checkpoint, epochs=8, blr=8e-3)
    top1, _ = ClsTrainer(cfg).train()
    assert top1 > 45.0, top1  # 64 measured here
    row = read_rows(tmp_path / "cls.csv")[-1]
    assert row["mode"] == "finetune" and row["pretrain_checkpoint"] == mae_checkpoint and row["dataset"] == "imagenet"
    assert float(row["top1"]) == pytest.approx(top1, abs=1e-3)
    result = subprocess.run(
        [sys.executable, os.path.join(ROOT, "tools/train_cls.py"), "--cfg", "cls/tiny_cpu.py", "--eval-only",
         "--resume", str(tmp_path / "run" / "checkpoint-last.pth"), "--data-root", cls_data["imagenet"],
         f"results_csv={str(tmp_path / 'cls.csv')!r}", f"backbone_overrides={ENCODER!r}", "num_workers=0"],
        capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]
    rows = read_rows(tmp_path / "cls.csv")
    assert len(rows) == 2 and rows[1]["top1"] == rows[0]["top1"] and rows[1]["top5"] == rows[0]["top5"]


@pytest.mark.slow
def test_linear_probe_on_frozen_features_beats_chance(mae_checkpoint, cls_data, tmp_path):
    cfg = cls_cfg(tmp_path, cls_data["inat2019"], init=mae_checkpoint, dataset="inat2019", mode="linprobe",
                  optimizer="lars", blr=8.0, weight_decay=0.0, epochs=8, auto_augment="", smoothing=0.0)
    top1, _ = ClsTrainer(cfg).train()
    assert top1 > 28.0, top1  # 42 measured here; chance is 20, one standard deviation of 100 draws is 4
    assert read_rows(tmp_path / "cls.csv")[-1]["mode"] == "linprobe"


def test_transfer_modes_need_a_checkpoint(cls_data, tmp_path):
    with pytest.raises(UserError, match="no initial checkpoint was given: pass --init CHECKPOINT"):
        ClsTrainer(cls_cfg(tmp_path, cls_data["imagenet"]))


def test_scratch_training_keeps_and_evaluates_an_ema(cls_data, tmp_path):
    cfg = cls_cfg(tmp_path, cls_data["places365"], dataset="places365", mode="scratch", epochs=1, ema_decay=0.9,
                  backbone_overrides=dict(patch_size=16, depth=1))
    trainer = ClsTrainer(cfg)
    top1, _ = trainer.train()
    ckpt = torch.load(tmp_path / "run" / "checkpoint-last.pth", weights_only=True)
    assert ckpt["ema"].keys() == ckpt["model"].keys()
    assert any(not torch.equal(ckpt["ema"][k], ckpt["model"][k]) for k in ckpt["model"])
    assert top1 == trainer.evaluate()[0]  # evaluate() reads the EMA weights
    assert read_rows(tmp_path / "cls.csv")[-1]["pretrain_checkpoint"] == "none"


def test_eval_every_validates_every_nth_epoch_and_the_last(cls_data, tmp_path):
    cfg = cls_cfg(tmp_path, cls_data["places365"], dataset="places365", mode="scratch", epochs=3, eval_every=2,
                  backbone_overrides=dict(patch_size=16, depth=1))
    top1, _ = ClsTrainer(cfg).train()
    log = read_rows(tmp_path / "run" / "log.csv")
    assert [row["top1"] != "" for row in log] == [False, True, True]
    assert float(log[-1]["top1"]) == pytest.approx(top1, abs=1e-3)
    assert float(read_rows(tmp_path / "cls.csv")[-1]["top1"]) == pytest.approx(top1, abs=1e-3)
    with pytest.raises(UserError, match=r"eval_every=0 is out of range: it must be in \[1, inf\)"):
        ClsTrainer(cls_cfg(tmp_path, cls_data["places365"], dataset="places365", mode="scratch", eval_every=0))


@pytest.mark.slow
def test_two_process_evaluation_counts_every_image_once(mae_checkpoint, cls_data, tmp_path):
    ckpt_cfg = cls_cfg(tmp_path, cls_data["imagenet"], init=mae_checkpoint, epochs=1)
    single = ClsTrainer(ckpt_cfg)
    single.train()
    args = ["--cfg", "cls/tiny_cpu.py", "--eval-only", "--resume", str(tmp_path / "run" / "checkpoint-last.pth"),
            "--data-root", cls_data["imagenet"], f"results_csv={str(tmp_path / 'ddp.csv')!r}",
            f"backbone_overrides={ENCODER!r}", "num_workers=0", "batch_size=7"]
    result = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port",
                             "29523", os.path.join(ROOT, "tools/train_cls.py"), *args],
                            capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert result.returncode == 0, result.stderr[-3000:]
    assert read_rows(tmp_path / "ddp.csv")[0]["top1"] == read_rows(tmp_path / "cls.csv")[0]["top1"]
