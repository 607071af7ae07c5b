"""The edges of a run: an interrupt during a checkpoint write, settings outside their range, and a
run's ownership of its output folder (every training tool, one process and several)."""
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest
import torch
from conftest import ROOT, TINY_PRETRAIN_ARGS, user_error

from common.checkpoint_files import load_file, save_file
from common.config import check_ranges
from common.errors import UserError
from common.run_lock import LOCK_NAME, owned_output_dir
from cls_transfer.config import ClsConfig
from pretrain.config import PretrainConfig
from reproduction.toy_data import write_image_folder

@pytest.fixture(scope="module")
def images(tmp_path_factory):
    root = tmp_path_factory.mktemp("images")
    write_image_folder(str(root), num_images=8, size=40, seed=1)
    return str(root)


def pretrain_args(images, out, *extra):
    return ("pretrain.py", "--cfg", "pretrain/mae_vit_tiny_cpu.py", "--data", images, "--output-dir", out,
            *TINY_PRETRAIN_ARGS, *extra)


def start_tool(*args):
    return subprocess.Popen([sys.executable, os.path.join(ROOT, "tools", args[0]), *map(str, args[1:])], cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def wait_for(path, proc, seconds=300):
    deadline = time.time() + seconds
    while not os.path.exists(path):
        assert proc.poll() is None and time.time() < deadline, proc.stderr.read()[-3000:] if proc.poll() is not None else "timeout"
        time.sleep(0.05)


# -- 1. an interrupt while a checkpoint is written ------------------------------------------------
SAVE_ONCE = textwrap.dedent("""
    import os, signal, sys, torch
    from common.checkpoint_files import save_file

    real_save = torch.save
    def signal_then_save(*args, **kwargs):  # the moment: inside save_file, as the write starts
        os.kill(os.getpid(), int(sys.argv[2]))
        return real_save(*args, **kwargs)

    torch.save = signal_then_save
    state = {"model": {f"w{i}": torch.full((256, 256), float(i)) for i in range(16)}, "epoch": 3}
    try:
        save_file(state, sys.argv[1])
        print("returned", flush=True)
    except KeyboardInterrupt:
        print("interrupted", flush=True)
        sys.exit(130)
""")


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_an_interrupt_during_a_checkpoint_write_takes_effect_once_the_file_is_complete(tmp_path, signum):
    target = tmp_path / "checkpoint-last.pth"
    save_file({"epoch": 2}, str(target))  # the previous checkpoint
    # SIGINT as in a terminal, also where the suite itself runs in the background (which ignores it)
    result = subprocess.run([sys.executable, "-c", SAVE_ONCE, str(target), str(int(signum))], cwd=ROOT,
                            capture_output=True, text=True, env={**os.environ, "PYTHONPATH": ROOT}, timeout=120,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    # SIGINT: KeyboardInterrupt as save_file returns; SIGTERM: its default action, once the file is complete
    expected = (130, "interrupted\n") if signum == signal.SIGINT else (-signal.SIGTERM, "")
    assert (result.returncode, result.stdout) == expected, result.stderr[-3000:]
    assert "Traceback" not in result.stderr and "terminate called" not in result.stderr
    saved = load_file(str(target))
    assert saved["epoch"] == 3 and torch.equal(saved["model"]["w15"], torch.full((256, 256), 15.0))
    assert os.listdir(tmp_path) == ["checkpoint-last.pth"]


# -- 2. settings outside their range --------------------------------------------------------------
@pytest.mark.parametrize("setting, message", [
    ("mask_ratio=1.0", "mask_ratio=1.0 is out of range: it must be in (0, 1)"),
    ("mask_ratio=0.0", "mask_ratio=0.0 is out of range: it must be in (0, 1)"),
    ("mask_ratio=0.95", "mask_ratio=0.95 leaves none of the 16 patches of a 32 px input visible: it must be in (0, 0.9375]"),
    ("input_size=60", "input size 60 is not a multiple of the patch size 8"),
    ("epochs=0", "epochs=0 is out of range: it must be in [1, inf)"),
    ("save_every=0", "save_every=0 is out of range: it must be in [1, inf)"),
    ("betas=(1.5, 0.95)", "betas=(1.5, 0.95) is out of range: it must be in [0, 1)"),
    ("mask_sampling='grid'", "grid-wise masking needs mask_ratio = 1 - 1/s^2"),
])
def test_pretraining_settings_out_of_range_stop_before_training(images, tmp_path, setting, message):
    extra = ("mask_ratio=0.5",) if "grid" in setting else ()
    line = user_error(*pretrain_args(images, tmp_path / "run", *extra, setting))
    assert line.startswith(f"error: {message}"), line
    assert not (tmp_path / "run").exists()  # refused before anything was written


def test_every_declared_range_is_enforced_at_its_bounds():
    for config_class in (PretrainConfig, ClsConfig):
        for name, interval in config_class.ranges.items():
            low, high = interval[1:-1].split(", ")
            for bound, closed in ((low, interval[0] == "["), (high, interval[-1] == "]")):
                if bound == "inf":
                    continue
                default = getattr(config_class(), name)
                value = type(default[0] if isinstance(default, tuple) else default or 0.0)(float(bound))
                value = (value, value) if isinstance(default, tuple) else value
                cfg = config_class(**{name: value})
                if closed:
                    check_ranges(cfg)
                else:
                    with pytest.raises(UserError, match=f"{name}=.* is out of range: it must be in "):
                        check_ranges(cfg)


def test_train_dvae_checks_its_arguments_in_one_line(images, tmp_path):
    line = user_error("train_dvae.py", "--data", images, "--output-dir", tmp_path / "dvae", "--epochs", "0")
    assert line == "error: argument --epochs: 0 is out of range: it must be in [1, inf) (see train_dvae.py --help)"
    line = user_error("train_dvae.py", "--data", images, "--output-dir", tmp_path / "dvae", "--lr", "fast")
    assert line.startswith("error: argument --lr: 'fast' is not a number")
    line = user_error("train_dvae.py", "--data", tmp_path / "nothing", "--output-dir", tmp_path / "dvae")
    assert str(tmp_path / "nothing") in line
    classifier = tmp_path / "cls.pth"
    torch.save({"model": {}, "classes": ["a"]}, classifier)
    line = user_error("train_dvae.py", "--data", images, "--output-dir", tmp_path / "dvae", "--batch-size", "4",
                      "--resume", classifier)
    assert line == f"error: {classifier} is not a checkpoint of tools/train_dvae.py (its dvae.pth)"


# -- 3. a run owns its output folder --------------------------------------------------------------
def test_a_second_run_into_a_running_runs_folder_stops_and_a_killed_runs_lock_is_taken_over(images, tmp_path):
    run = tmp_path / "run"
    first = start_tool(*pretrain_args(images, run, "epochs=1000"))
    try:
        wait_for(run / "checkpoint-last.pth", first)
        line = user_error(*pretrain_args(images, run, "epochs=2", "--resume", "auto"))
        assert line.startswith(f"error: {run} is in use by another run (host ") and f", pid {first.pid}, since " in line
        assert f"lock file {run / LOCK_NAME}): wait for it to end, or give this run another output folder" in line
        assert first.poll() is None  # the first run goes on
    finally:
        first.kill()  # SIGKILL: no clean-up, its lock file stays behind
        first.wait()
    assert f"pid {first.pid}" in (run / LOCK_NAME).read_text()
    epoch = load_file(str(run / "checkpoint-last.pth"))["epoch"]
    second = subprocess.run([sys.executable, os.path.join(ROOT, "tools", "pretrain.py"),
                             *pretrain_args(images, run, f"epochs={epoch + 1}", "--resume", "auto")[1:]],
                            capture_output=True, text=True, cwd=ROOT)
    assert second.returncode == 0, second.stderr[-3000:]
    assert f"took over {run / LOCK_NAME}, left by a run that no longer holds it (host " in second.stderr + second.stdout
    assert load_file(str(run / "checkpoint-last.pth"))["epoch"] == epoch + 1
    assert not (run / LOCK_NAME).exists()  # a run that ends releases its folder


def test_the_lock_is_taken_by_rank_0_alone_and_every_rank_stops(images, tmp_path):
    run = tmp_path / "run"
    with owned_output_dir(str(run)):
        result = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port",
                                 "29531", os.path.join(ROOT, "tools", "pretrain.py"),
                                 *pretrain_args(images, run, "epochs=1")[1:]], capture_output=True, text=True, cwd=ROOT,
                                timeout=300, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert result.returncode != 0
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert errors == [errors[0]] and errors[0].startswith(f"error: {run} is in use by another run (host "), result.stderr[-3000:]
    assert f"pid {os.getpid()}," in errors[0] and not (run / "checkpoint-last.pth").exists()


def test_every_training_tool_refuses_a_folder_another_run_holds(images, tmp_path):
    from reproduction.toy_data import write_classification_sets

    run = tmp_path / "run"
    sets = write_classification_sets(str(tmp_path / "cls"), num_train=10, num_val=5, size=40, seed=0)
    commands = {
        "train_cls.py": ("--cfg", "cls/tiny_cpu.py", "--init", "none", "--dataset", "imagenet", "--data-root",
                         sets["imagenet"], "--output-dir", run, "epochs=1", "num_workers=0", "batch_size=4",
                         "total_batch_size=0", "input_size=32"),
        "train_dvae.py": ("--data", images, "--output-dir", run, "--epochs", "1", "--batch-size", "4"),
    }
    with owned_output_dir(str(run)):
        for tool, args in commands.items():
            line = user_error(tool, *args)
            assert line.startswith(f"error: {run} is in use by another run (host ") and f"pid {os.getpid()}," in line, tool
    assert sorted(os.listdir(run)) == [], os.listdir(run)  # nothing written into the held folder, the lock released
