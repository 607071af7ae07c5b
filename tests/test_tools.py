"""The command-line tools, run as a user runs them."""
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run(*args):
    result = subprocess.run([sys.executable, *args], capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout + result.stderr


@pytest.mark.slow
def test_demo_writes_checkpoint_log_plot_and_figure_then_visualize_reads_it(tmp_path):
    out = run("tools/demo.py", "--out", str(tmp_path), "--num-images", "48", "--epochs", "2", "batch_size=16")
    pre = tmp_path / "pretrain"
    for name in ("checkpoint-last.pth", "log.csv", "loss.png", "figures/reconstruction-epoch0002.png"):
        assert (pre / name).is_file(), name
        assert str(pre / name) in out or name.startswith("figures") or name == "log.csv"
    images = sorted(str(p) for p in (tmp_path / "data" / "train").rglob("*.png"))[:2]
    out = run("tools/visualize_mae.py", str(pre / "checkpoint-last.pth"), *images, "--out", str(tmp_path / "v.png"))
    assert "loaded" in out and (tmp_path / "v.png").stat().st_size > 1000
    # a second demo run resumes the finished run instead of training again
    again = run("tools/demo.py", "--out", str(tmp_path), "--epochs", "2", "batch_size=16")
    assert "resumed from" in again and "epoch 1/2" not in again


def test_pretrain_cli_reports_bad_input():
    result = subprocess.run([sys.executable, "tools/pretrain.py", "--cfg", "pretrain/mae_vit_tiny_cpu.py",
                             "--data", "/nonexistent/images"], capture_output=True, text=True, cwd=ROOT)
    assert result.returncode != 0 and "/nonexistent/images' does not exist; expected an ImageNet-style folder" in result.stderr
    result = subprocess.run([sys.executable, "tools/pretrain.py", "--cfg", "no/such.py"], capture_output=True, text=True, cwd=ROOT)
    assert result.returncode != 0 and "neither a file nor a name under" in result.stderr
    result = subprocess.run([sys.executable, "tools/pretrain.py", "--cfg", "pretrain/mae_vit_tiny_cpu.py", "epoch=3"],
                            capture_output=True, text=True, cwd=ROOT)
    assert result.returncode != 0 and "unknown config key 'epoch'" in result.stderr
