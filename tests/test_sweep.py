"""tools/sweep.py: the grid, the tool's command lines, and a real 2-run sweep that is launched,
skipped when done, resumed when unfinished and tabulated."""
import csv
import os

import pytest

from reproduction.toy_data import write_classification_sets
from tools.sweep import command, main, split_values

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_values_split_on_top_level_commas_only():
    assert split_values("1e-4,2e-4,4e-4") == ["1e-4", "2e-4", "4e-4"]
    assert split_values("(0,1,2,3),(1,2,3,4)") == ["(0,1,2,3)", "(1,2,3,4)"]
    assert split_values("dict(a=1,b=[2,3])") == ["dict(a=1,b=[2,3])"]


@pytest.mark.parametrize("tool, script, flags", [
    ("seg", "train_seg.py", ["--output-dir", "R", "--resume", "auto", "--results-csv", "C"]),
    ("det", "train_det.py", ["--output-dir", "R", "--resume", "auto", "--results-csv", "C"]),
    ("cls", "train_cls.py", ["--output-dir", "R", "--resume", "auto", "--results-csv", "C"]),
    ("pretrain", "pretrain.py", ["--output-dir", "R", "--resume", "auto"])])
def test_every_tool_gets_the_shared_flags(tool, script, flags):
    cmd = command(tool, f"{tool}/x.py", "R", "C", ["a.b=1"], ["--init", "ck.pth"], ["python"])
    assert cmd[0] == "python" and cmd[1].endswith(os.path.join("tools", script))
    assert cmd[2:] == ["--cfg", f"{tool}/x.py", *flags, "a.b=1", "--init", "ck.pth"]


def read(path):
    with open(path) as f:
        return list(csv.DictReader(f))


@pytest.mark.slow
def test_sweep_launches_skips_resumes_and_tabulates(tmp_path, capfd):
    data = write_classification_sets(str(tmp_path / "cls"), num_train=40, num_val=10, size=32, seed=1)["imagenet"]
    out = str(tmp_path / "sweep")
    args = ["--cfg", "cls/scratch_tiny_cpu.py", "--out", out, "blr=1e-3,4e-3", "epochs=1", "warmup_epochs=0",
            "input_size=32", "backbone_overrides={'patch_size': 8, 'depth': 1}", "num_workers=0", "batch_size=8",
            "--", "--data-root", data]
    assert main(args) == 0
    summary = read(os.path.join(out, "summary.csv"))
    assert [(r["blr"], r["status"]) for r in summary] == [("1e-3", "done"), ("4e-3", "done")]
    assert all(r["top1"] for r in summary) and len(read(os.path.join(out, "results.csv"))) == 2

    capfd.readouterr()
    assert main(args) == 0  # everything done: nothing is launched
    assert capfd.readouterr().out.count("done, skipped") == 2
    assert len(read(os.path.join(out, "results.csv"))) == 2

    os.remove(os.path.join(out, "blr=1e-3", "SWEEP_DONE"))  # as if the run had been killed after its checkpoint
    assert main(args) == 0
    log = capfd.readouterr()
    assert "resumed from" in log.out + log.err and log.out.count("done, skipped") == 1
    assert len(read(os.path.join(out, "results.csv"))) == 3
    assert [r["status"] for r in read(os.path.join(out, "summary.csv"))] == ["done", "done"]
