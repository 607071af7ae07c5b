"""The pre-training loop, run for real on tiny models and generated images."""
import csv
import json
import math
import os
import signal
import subprocess
import sys
import time

import pytest
import torch
from PIL import Image
from conftest import images_with_one_broken_file

from common.checkpoint_files import load_file
from common.config import apply_overrides, load_config
from common.errors import UserError
from common.training import lr_at
from pretrain.config import PretrainConfig
from pretrain.data import list_images
from pretrain.engine import Trainer
from reproduction.toy_data import write_image_folder

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY = dict(model="mae_vit_tiny_patch16", input_size=32, epochs=2, warmup_epochs=1, batch_size=4,
            model_overrides=dict(patch_size=8, depth=2, embed_dim=64, num_heads=4, decoder_embed_dim=32,
                                 decoder_depth=1, decoder_num_heads=4),
            num_workers=0, vis_every=0, save_every=1, precision="fp32", blr=1e-3)
TINY_ARGS = ["input_size=32", "batch_size=4", "num_workers=0", "vis_every=0", "save_every=1", "precision='fp32'",
             "blr=1e-3", "warmup_epochs=1"] + [f"model_overrides.{k}={v!r}" for k, v in TINY["model_overrides"].items()]


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    root = tmp_path_factory.mktemp("images")
    write_image_folder(str(root), num_images=16, size=40, seed=1)
    return str(root)


def tiny_cfg(images, out, **kw):
    return PretrainConfig(**{**TINY, "data": images, "output_dir": str(out), **kw})


def model_of(path):
    return load_file(path)["model"]


def assert_same_model(a, b, atol=0.0):
    assert a.keys() == b.keys()
    for k in a:
        torch.testing.assert_close(a[k], b[k], atol=atol, rtol=0, msg=k)


def test_lr_schedule_warms_up_then_follows_half_cosine():
    cfg = PretrainConfig(epochs=100, warmup_epochs=10, min_lr=0.0)
    assert lr_at(cfg, 1.0, 0) == 0 and lr_at(cfg, 1.0, 5) == 0.5 and lr_at(cfg, 1.0, 10) == 1.0
    assert math.isclose(lr_at(cfg, 1.0, 55), 0.5) and math.isclose(lr_at(cfg, 1.0, 100), 0.0, abs_tol=1e-12)


def test_config_files_and_overrides():
    cfg = load_config(os.path.join(ROOT, "configs/pretrain/mae_vit_large.py"), PretrainConfig, ["epochs=800", "betas=[0.9,0.9]"])
    assert cfg.model == "mae_vit_large_patch16" and cfg.total_batch_size == 4096 and cfg.epochs == 800
    assert cfg.betas == (0.9, 0.9) and cfg.blr == 1.5e-4 and cfg.weight_decay == 0.05
    with pytest.raises(UserError, match="unknown config key 'epoch'"):
        apply_overrides(cfg, ["epoch=3"])
    with pytest.raises(UserError, match="'epochs' expects int"):
        apply_overrides(cfg, ["epochs=many"])


def test_missing_or_empty_data_names_the_layout(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist; expected an ImageNet-style folder"):
        list_images(str(tmp_path / "nowhere"))
    (tmp_path / "empty" / "train" / "cls").mkdir(parents=True)
    with pytest.raises(FileNotFoundError, match="contains no images"):
        list_images(str(tmp_path / "empty"))
    listing = tmp_path / "list.txt"
    listing.write_text("a/1.jpg 3\n\n/abs/2.png\n")
    assert list_images(str(listing)) == [str(tmp_path / "a/1.jpg"), "/abs/2.png"]


def test_training_writes_checkpoints_logs_and_figures(images, tmp_path):
    summary = Trainer(tiny_cfg(images, tmp_path, vis_every=2, vis_images=2)).train()
    assert summary["rank_param_digests"] and not summary["skipped_images"]
    assert {"checkpoint-0001.pth", "checkpoint-0002.pth", "checkpoint-last.pth", "log.csv", "summary.json"} <= set(os.listdir(tmp_path))
    with open(tmp_path / "log.csv") as f:
        rows = list(csv.DictReader(f))
    assert [r["epoch"] for r in rows] == ["1", "2"] and all(float(r["loss"]) > 0 for r in rows)
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    events = EventAccumulator(str(tmp_path / "tensorboard"))
    events.Reload()
    assert len(events.Scalars("train/loss")) == 8 and len(events.Scalars("train/lr")) == 8  # 16 images / 4 x 2 epochs
    fig = Image.open(tmp_path / "figures" / "reconstruction-epoch0002.png")
    assert fig.size[0] > 200 and fig.size[1] > 200
    ckpt = load_file(str(tmp_path / "checkpoint-last.pth"))
    assert ckpt["epoch"] == 2 and ckpt["config"]["model"] == "mae_vit_tiny_patch16"


def test_gradient_accumulation_equals_the_large_batch(images, tmp_path):
    Trainer(tiny_cfg(images, tmp_path / "big", batch_size=8)).train()
    Trainer(tiny_cfg(images, tmp_path / "accum", batch_size=4, total_batch_size=8)).train()
    assert_same_model(model_of(tmp_path / "big/checkpoint-last.pth"), model_of(tmp_path / "accum/checkpoint-last.pth"), atol=1e-5)


def test_bad_images_fail_or_are_skipped_and_counted(images, tmp_path):
    data = tmp_path / "data"
    images_with_one_broken_file(data)
    with pytest.raises(Exception, match="cannot read image .*broken.png"):
        Trainer(tiny_cfg(str(data), tmp_path / "fail", epochs=1)).train()
    summary = Trainer(tiny_cfg(str(data), tmp_path / "skip", epochs=2, bad_images="skip")).train()
    assert len(summary["skipped_images"]) >= 1 and all("broken.png" in s for s in summary["skipped_images"])
    with open(tmp_path / "skip" / "summary.json") as f:
        assert json.load(f)["skipped_images"] == summary["skipped_images"]


def test_nan_loss_stops_with_the_last_good_checkpoint_intact(images, tmp_path):
    Trainer(tiny_cfg(images, tmp_path, epochs=1)).train()
    last = tmp_path / "checkpoint-last.pth"
    before = last.read_bytes()
    with pytest.raises(FloatingPointError, match=r"loss is (nan|inf).*last good checkpoint is .*checkpoint-last.pth"):
        Trainer(tiny_cfg(images, tmp_path, epochs=3, warmup_epochs=0, blr=1e30), resume="auto").train()
    assert last.read_bytes() == before
    assert load_file(str(last))["epoch"] == 1


def _pretrain_cmd(images, out, *extra, launcher=(sys.executable,)):
    return [*launcher, os.path.join(ROOT, "tools/pretrain.py"), "--cfg", "pretrain/mae_vit_tiny_cpu.py",
            "--data", images, "--output-dir", str(out), *TINY_ARGS, *extra]


@pytest.mark.slow
def test_kill_and_resume_matches_an_uninterrupted_run(images, tmp_path):
    epochs = ["epochs=12", "model_overrides.drop_path_rate=0.1"]  # drop path: resumed randomness must match too
    subprocess.run(_pretrain_cmd(images, tmp_path / "full", *epochs), check=True, capture_output=True)
    proc = subprocess.Popen(_pretrain_cmd(images, tmp_path / "killed", *epochs), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    last = tmp_path / "killed" / "checkpoint-last.pth"
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None:
        if last.exists() and load_file(str(last))["epoch"] >= 3:
            proc.send_signal(signal.SIGKILL)
            break
        time.sleep(0.05)
    proc.wait()
    killed_at = load_file(str(last))["epoch"]
    assert proc.returncode == -signal.SIGKILL and killed_at < 12, "the run was not interrupted"
    resumed = subprocess.run(_pretrain_cmd(images, tmp_path / "killed", *epochs, "--resume", "auto"),
                             capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert f"resumed from {last} at epoch {killed_at}" in resumed.stderr + resumed.stdout
    assert_same_model(model_of(tmp_path / "full/checkpoint-last.pth"), model_of(last))
    with open(tmp_path / "killed" / "log.csv") as f:
        assert [int(r["epoch"]) for r in csv.DictReader(f)] == list(range(1, 13))


@pytest.mark.slow
def test_two_process_ddp_equals_one_process_with_the_same_global_batch(images, tmp_path):
    torchrun = (sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", "29517")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    ddp = subprocess.run(_pretrain_cmd(images, tmp_path / "ddp", "epochs=2", "batch_size=4", launcher=torchrun),
                         capture_output=True, text=True, env=env)
    assert ddp.returncode == 0, ddp.stderr[-3000:]
    subprocess.run(_pretrain_cmd(images, tmp_path / "single", "epochs=2", "batch_size=8"), check=True, capture_output=True)
    with open(tmp_path / "ddp" / "summary.json") as f:
        summary = json.load(f)
    assert summary["world_size"] == 2
    digests = summary["rank_param_digests"]
    assert len(digests) == 2 and digests[0] == digests[1]  # bit-identical parameters on both ranks
    assert_same_model(model_of(tmp_path / "single/checkpoint-last.pth"), model_of(tmp_path / "ddp/checkpoint-last.pth"), atol=1e-5)
