"""Preemption and time limits: SIGTERM, SIGUSR1 or SIGUSR2 sent to a running training tool ends it at a
step boundary with its checkpoint written, one line `error: stopped by ...` and exit code 75; `--resume
auto` continues from that checkpoint. Every test sends the real signal to a real tool process."""
import contextlib
import csv
import json
import os
import re
import signal
import subprocess
import sys
import time

import pytest
import torch
from conftest import ROOT

from common.checkpoint_files import load_file
from common.run_lock import LOCK_NAME
from reproduction.toy_data import write_image_folder

EXIT_STOPPED = 75
TINY_MAE = ["input_size=32", "batch_size=4", "total_batch_size=8", "num_workers=1", "vis_every=0", "save_every=100",
            "precision='fp32'", "blr=1e-3", "warmup_epochs=1", "model_overrides.drop_path_rate=0.1",
            "model_overrides.patch_size=8", "model_overrides.depth=2", "model_overrides.embed_dim=64",
            "model_overrides.num_heads=4", "model_overrides.decoder_embed_dim=32", "model_overrides.decoder_depth=1",
            "model_overrides.decoder_num_heads=4"]


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    root = tmp_path_factory.mktemp("images")
    write_image_folder(str(root), num_images=32, size=40, seed=1)  # 8 batches of 4, 4 optimizer steps an epoch
    return str(root)


def tool(name, *args, launcher=(sys.executable,)):
    return [*launcher, os.path.join(ROOT, "tools", name), *map(str, args)]


def run(command, log):
    """Runs a tool to its end; its output goes to the file `log` (returned as text)."""
    with open(log, "w") as out:
        result = subprocess.run(command, stdout=out, stderr=subprocess.STDOUT, cwd=ROOT)
    text = open(log).read()
    assert result.returncode == 0, text[-3000:]
    return text


def start(command, log):
    """A tool in a session of its own, so that os.killpg reaches all its processes (data workers, the
    ranks under torchrun) as SLURM's signal reaches every process of a job step."""
    with open(log, "w") as out:
        return subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, cwd=ROOT, start_new_session=True)


def children(pid):
    found = []
    with contextlib.suppress(OSError):
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/children") as f:
                found += [int(p) for p in f.read().split()]
    return found


def wait_until(condition, proc, log, poll=0.01, seconds=300):
    deadline = time.time() + seconds
    while not condition():
        assert proc.poll() is None, open(log).read()[-3000:]
        assert time.time() < deadline, "timed out"
        time.sleep(poll)


def error_line(text, pattern):
    """The ONE line `error: ...` of a run's output, matching `pattern` (-> its groups)."""
    errors = [line for line in text.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, text[-3000:]
    match = re.fullmatch(pattern, errors[0])
    assert match, errors[0]
    return match.groups()


def stopped_line(proc, log, pattern):
    """The run ended as a stop request ends it: exit code 75, no traceback, one line `error: stopped by ...`."""
    proc.wait(timeout=300)
    text = open(log).read()
    assert proc.returncode == EXIT_STOPPED, (proc.returncode, text[-3000:])
    assert "Traceback" not in text, text[-3000:]
    return error_line(text, pattern)


def stopped_while_writing(name, args, tmp_path, signum, pattern):
    """tmp_path/full: the run uninterrupted; tmp_path/stopped: the same run, sent `signum` while it writes a
    checkpoint (its temporary file exists: the signal waits for the file, and the stop comes one step into
    the next epoch). -> (the stopped run's folder, the groups of its stop line)"""
    run(tool(name, *args, "--output-dir", tmp_path / "full"), tmp_path / "full.log")
    run_dir, log = tmp_path / "stopped", tmp_path / "stopped.log"
    proc = start(tool(name, *args, "--output-dir", run_dir), log)

    def writing():
        return run_dir.exists() and any(entry.startswith(".tmp-") for entry in os.listdir(run_dir))

    wait_until(writing, proc, log, poll=0.001)
    proc.send_signal(signum)
    return run_dir, stopped_line(proc, log, pattern)


def rows(path):
    with open(path) as f:
        return [{k: v for k, v in row.items() if k != "images_per_s"} for row in csv.DictReader(f)]


def assert_same_model(a, b):
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k


# -- pre-training --------------------------------------------------------------------------------
@pytest.mark.slow
def test_pretraining_stopped_by_sigusr2_mid_epoch_resumes_bit_identically(images, tmp_path):
    args = ["--cfg", "pretrain/mae_vit_tiny_cpu.py", "--data", images, *TINY_MAE, "epochs=5"]
    run(tool("pretrain.py", *args, "--output-dir", tmp_path / "full"), tmp_path / "full.log")
    run_dir, log = tmp_path / "stopped", tmp_path / "stopped.log"
    last = run_dir / "checkpoint-last.pth"
    proc = start(tool("pretrain.py", *args, "--output-dir", run_dir), log)
    # the moment: after the first epoch, while an epoch's DataLoader worker runs; submitit's time-limit signal
    # reaches it too, as SLURM's --signal reaches every process of a job step
    wait_until(lambda: last.exists() and children(proc.pid), proc, log)
    os.killpg(proc.pid, signal.SIGUSR2)
    epoch, iteration, path = stopped_line(
        proc, log, r"error: stopped by SIGUSR2 at epoch (\d+), iteration (\d+); --resume auto continues from (\S+)")
    epoch, iteration = int(epoch), int(iteration)
    assert path == str(last) and 2 <= epoch <= 5 and iteration % 2 == 0  # at an optimizer step (2 batches each)
    ckpt = load_file(str(last))
    assert ckpt["epoch"] == epoch - 1 and ckpt["partial_epoch"]["samples"] == iteration * 4
    assert not (run_dir / LOCK_NAME).exists()  # the output folder was released

    resumed = run(tool("pretrain.py", *args, "--output-dir", run_dir, "--resume", "auto"), tmp_path / "resumed.log")
    assert f"resumed from {last} at epoch {epoch}, iteration {iteration}" in resumed
    assert_same_model(load_file(str(tmp_path / "full" / "checkpoint-last.pth"))["model"], load_file(str(last))["model"])
    assert rows(run_dir / "log.csv") == rows(tmp_path / "full" / "log.csv")  # the stopped epoch's loss too


@pytest.mark.slow
def test_two_process_pretraining_stops_every_rank_at_the_same_step(images, tmp_path):
    def torchrun(port):
        return (sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", str(port))

    args = ["--cfg", "pretrain/mae_vit_tiny_cpu.py", "--data", images, *TINY_MAE, "epochs=4"]  # 4 batches x 2 ranks
    run(tool("pretrain.py", *args, "--output-dir", tmp_path / "full", launcher=torchrun(29541)), tmp_path / "full.log")
    run_dir, log = tmp_path / "stopped", tmp_path / "stopped.log"
    last = run_dir / "checkpoint-last.pth"
    proc = start(tool("pretrain.py", *args, "--output-dir", run_dir, launcher=torchrun(29542)), log)
    # the moment: after the first epoch, while a rank's DataLoader worker runs
    wait_until(lambda: last.exists() and any(children(rank) for rank in children(proc.pid)), proc, log)
    # the time-limit signal to both ranks and their data workers, as SLURM's --signal reaches the processes of
    # a job step (torchrun itself would end on SIGUSR2 without --signals-to-handle: README)
    for rank in children(proc.pid):
        for pid in (rank, *children(rank)):
            os.kill(pid, signal.SIGUSR2)
    proc.wait(timeout=300)  # torchrun then ends with its own exit code 1: its ranks ended with 75
    text = open(log).read()
    epoch, iteration, path = error_line(  # rank 0's
        text, r"error: stopped by SIGUSR2 at epoch (\d+), iteration (\d+); --resume auto continues from (\S+)")
    # every rank left at the same step: none was still in a collective when torchrun's grace time ended
    assert "forcefully exiting" not in text and "exited unexpectedly" not in text, text[-3000:]
    epoch, iteration = int(epoch), int(iteration)
    assert path == str(last)
    ckpt = load_file(str(last))
    assert ckpt["epoch"] == epoch - 1 and ckpt["partial_epoch"]["samples"] == iteration * 4 * 2
    assert len(ckpt["partial_epoch"]["rng"]) == 2  # each rank's generators

    resumed = run(tool("pretrain.py", *args, "--output-dir", run_dir, "--resume", "auto", launcher=torchrun(29543)),
                  tmp_path / "resumed.log")
    assert f"resumed from {last} at epoch {epoch}, iteration {iteration}" in resumed
    digests = [json.load(open(d / "summary.json"))["rank_param_digests"] for d in (tmp_path / "full", run_dir)]
    assert digests[0][0] == digests[0][1] == digests[1][0] == digests[1][1]
    assert rows(run_dir / "log.csv") == rows(tmp_path / "full" / "log.csv")


# -- classification ------------------------------------------------------------------------------
@pytest.mark.slow
def test_classification_stopped_by_sigusr1_resumes_at_that_iteration_bit_identically(tmp_path):
    from reproduction.toy_data import write_classification_sets

    data = write_classification_sets(str(tmp_path / "cls"), num_train=16, num_val=5, size=32, seed=3,
                                     datasets=("imagenet",))["imagenet"]
    # everything random on: drop path (torch), mixup / cutmix (numpy), RandAugment in this process (Python), an EMA
    args = ["--cfg", "cls/tiny_cpu.py", "--init", "none", "--dataset", "imagenet", "--data-root", data, "epochs=4",
            "num_workers=0", "batch_size=4", "input_size=32", "precision='fp32'", "drop_path=0.1", "mixup=0.8",
            "cutmix=1.0", "ema_decay=0.9"]
    run_dir, (epoch, path) = stopped_while_writing(
        "train_cls.py", args, tmp_path, signal.SIGUSR1,
        r"error: stopped by SIGUSR1 at epoch (\d+), iteration 1; --resume auto continues from (\S+)")
    last = run_dir / "checkpoint-last.pth"
    assert path == str(last) and load_file(str(last))["epoch"] == int(epoch) - 1  # one step into the next epoch

    resumed = run(tool("train_cls.py", *args, "--output-dir", run_dir, "--resume", "auto"), tmp_path / "resumed.log")
    assert f"resumed from {last} at epoch {epoch}, iteration 1" in resumed
    full, stopped = load_file(str(tmp_path / "full" / "checkpoint-last.pth")), load_file(str(last))
    assert_same_model(full["model"], stopped["model"])
    assert_same_model(full["ema"], stopped["ema"])
    assert rows(run_dir / "log.csv") == rows(tmp_path / "full" / "log.csv")
    with open(run_dir / "results.csv") as f:
        assert [row["epoch"] for row in csv.DictReader(f)] == ["4"]


# -- dVAE ----------------------------------------------------------------------------------------
@pytest.mark.slow
def test_dvae_stopped_by_sigterm_resumes_bit_identically(images, tmp_path):
    args = ["--data", images, "--input-size", "32", "--crop-size", "16", "--vocab-size", "32", "--n-hid", "16",
            "--epochs", "3", "--batch-size", "4"]
    run_dir, (epoch, path) = stopped_while_writing(
        "train_dvae.py", args, tmp_path, signal.SIGTERM,
        r"error: stopped by SIGTERM at epoch (\d+), iteration 1; --resume auto continues from (\S+)")
    last = run_dir / "dvae.pth"
    ckpt = load_file(str(last))
    assert path == str(last) and ckpt["epoch"] == int(epoch) - 1 and ckpt["partial_epoch"]["iteration"] == 1

    resumed = run(tool("train_dvae.py", *args, "--output-dir", run_dir, "--resume"), tmp_path / "resumed.log")
    assert f"resumed from {last} at epoch {epoch}, iteration 1" in resumed
    assert_same_model(load_file(str(tmp_path / "full" / "dvae.pth"))["model"], load_file(str(last))["model"])
    assert rows(run_dir / "log.csv") == rows(tmp_path / "full" / "log.csv")


# -- detection and segmentation ------------------------------------------------------------------
@pytest.mark.slow
@pytest.mark.parametrize("processes", [1, 2])
def test_detection_stopped_by_sigusr1_saves_that_iteration_and_resumes_there(tmp_path, processes):
    from reproduction.toy_data import write_coco

    splits = write_coco(str(tmp_path / "coco"), num_train=8, num_val=2, size=128, seed=3)
    run_dir, log = tmp_path / "run", tmp_path / "stopped.log"
    datasets = [f"--dataset=toy_coco_{split}={ann}:{images}" for split, (ann, images) in splits.items()]
    args = ["--cfg", "det/mask_rcnn_vit_tiny.py", *datasets, "--init", "none", "--output-dir", run_dir,
            "--results-csv", tmp_path / "det.csv", "train.max_iter=1000", "train.checkpointer.period=1000",
            "train.eval_period=1000", "train.log_period=1", "--num-gpus", processes,
            f"dataloader.train.total_batch_size={2 * processes}"]
    proc = start(tool("train_det.py", *args), log)
    metrics = run_dir / "metrics.json"  # a row per iteration (log_period=1)
    wait_until(lambda: metrics.exists() and len(metrics.read_text().splitlines()) >= 3, proc, log)
    # as SLURM's --signal reaches a job step: every process (with 2, the launching one and both workers)
    os.killpg(proc.pid, signal.SIGUSR1)
    iteration, path = stopped_line(
        proc, log, r"error: stopped by SIGUSR1 at iteration (\d+); --resume auto continues from (\S+)")
    iteration = int(iteration)
    assert path == str(run_dir / f"model_{iteration - 1:07d}.pth")  # Detectron2 counts from 0
    assert (run_dir / "last_checkpoint").read_text() == os.path.basename(path)
    assert load_file(path)["iteration"] == iteration - 1 and not (run_dir / "model_final.pth").exists()
    assert not (run_dir / LOCK_NAME).exists() and not (tmp_path / "det.csv").exists()  # not evaluated

    resumed = run(tool("train_det.py", *args, "--resume", "auto", f"train.max_iter={iteration + 2}"),
                  tmp_path / "resumed.log")
    assert f"Starting training from iteration {iteration}" in resumed
    with open(tmp_path / "det.csv") as f:
        assert [row["iteration"] for row in csv.DictReader(f)] == [str(iteration + 2)]


@pytest.mark.slow
def test_segmentation_stopped_by_sigterm_saves_that_iteration_and_resumes_there(tmp_path):
    from reproduction.toy_data import write_ade20k
    from seg import mmengine_checkpoint_globals

    run_dir, log = tmp_path / "run", tmp_path / "stopped.log"
    data = write_ade20k(str(tmp_path / "ade"), num_train=8, num_val=2)
    args = ["--cfg", "seg/upernet_vit_tiny.py", "--data-root", data, "--init", "none", "--work-dir", run_dir,
            "--results-csv", tmp_path / "seg.csv", "train_cfg.max_iters=1000", "train_cfg.val_interval=1000",
            "default_hooks.checkpoint.interval=1000", "default_hooks.logger.interval=1"]
    proc = start(tool("train_seg.py", *args), log)

    def logged_iterations():  # mmengine's scalars.json: a row per iteration (logger.interval=1)
        return sum(len(path.read_text().splitlines()) for path in run_dir.glob("*/vis_data/scalars.json"))

    wait_until(lambda: logged_iterations() >= 3, proc, log)
    proc.send_signal(signal.SIGTERM)
    iteration, path = stopped_line(
        proc, log, r"error: stopped by SIGTERM at iteration (\d+); --resume auto continues from (\S+)")
    iteration = int(iteration)
    assert path == str(run_dir / f"iter_{iteration}.pth") and (run_dir / "last_checkpoint").read_text() == path
    with mmengine_checkpoint_globals():
        assert load_file(path)["meta"]["iter"] == iteration
    assert not (run_dir / LOCK_NAME).exists() and not (tmp_path / "seg.csv").exists()  # not validated, not recorded

    resumed = run(tool("train_seg.py", *args, "--resume", "auto", f"train_cfg.max_iters={iteration + 2}"),
                  tmp_path / "resumed.log")
    assert f"resumed epoch: 0, iter: {iteration}" in resumed
    with open(tmp_path / "seg.csv") as f:
        assert [row["iteration"] for row in csv.DictReader(f)] == [str(iteration + 2)]
