"""The GPU acceptance script's dry run (tiny models on the CPU), so that it cannot rot between the
sessions that are lent a GPU."""
import csv
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.mark.slow
def test_gpu_check_dry_run_runs_every_part(tmp_path):
    env = dict(os.environ, OMP_NUM_THREADS="1")
    result = subprocess.run([sys.executable, os.path.join(ROOT, "tools", "bench_gpu.py"), "--device", "cpu", "--quick",
                             "--time-scale", "4", "--out", str(tmp_path)], capture_output=True, text=True, env=env)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    with open(tmp_path / "gpu_check.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    status = {r["case"]: r["value"] for r in rows if r["part"] == "status"}
    assert set(status) == {"pretrain", "cls", "data", "det", "seg", "memory"}
    assert all(value.startswith("ok") for value in status.values()), status
    metrics = {(r["part"], r["metric"]) for r in rows}
    for expected in [("pretrain", "img/s"), ("pretrain", "TFLOP/step (fwd+bwd)"), ("pretrain", "x"), ("cls", "img/s"),
                     ("data", "img/s per worker"), ("data", "workers needed"), ("det", "s/iter (median after warm-up)"),
                     ("seg", "loss finite and falling"), ("memory", "peak GiB")]:
        assert expected in metrics, expected
    # both MAE implementations measured on the same batch, and the Table 2 ratios are positive numbers
    cases = {r["case"] for r in rows if r["part"] == "pretrain" and r["metric"] == "img/s"}
    assert any("transformers" in c for c in cases) and any(" ours " in c for c in cases)
    assert all(float(r["value"]) > 0 for r in rows if r["metric"] == "x")
    assert (tmp_path / "gpu_check.md").read_text().count("## ") == 8  # machine, status and the six parts


def test_gpu_check_data_part_measures_both_loaders(tmp_path):
    """The gpu data backend's loader decodes on the CPU in the dry run (nvJPEG on the GPU machine)."""
    result = subprocess.run([sys.executable, os.path.join(ROOT, "tools", "bench_gpu.py"), "--device", "cpu", "--quick",
                             "--parts", "data", "--time-scale", "4", "--out", str(tmp_path)], capture_output=True, text=True,
                            env=dict(os.environ, OMP_NUM_THREADS="1"))
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    with open(tmp_path / "gpu_check.csv", newline="") as f:
        rows = [r for r in csv.DictReader(f) if r["part"] == "data" and r["case"] != "generated JPEGs"]
    measured = {(r["case"].split(" loader")[0], r["metric"]) for r in rows if float(r["value"]) >= 0}
    assert measured == {(backend, metric) for backend in ("pil", "gpu") for metric in
                        ("img/s", "img/s per worker", "CPU ms per image, workers", "CPU ms per image, main process")}
    assert all(float(r["value"]) > 0 for r in rows if r["metric"] in ("img/s", "img/s per worker"))
    assert any(r["case"].startswith("gpu loader (decoding on cpu), 1 worker(s)") for r in rows)


def test_gpu_check_rejects_an_unknown_part(tmp_path):
    result = subprocess.run([sys.executable, os.path.join(ROOT, "tools", "bench_gpu.py"), "--device", "cpu",
                             "--parts", "pretrain,detection", "--out", str(tmp_path)], capture_output=True, text=True)
    assert result.returncode != 0 and "detection" in result.stderr and "Traceback" not in result.stderr
