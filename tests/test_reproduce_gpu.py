"""The gpu presets of tools/reproduce.py (GpuPreset): the gpu preset's graph and launchers (dry run), its
refusal without a GPU, gpu-smoke through scripts/gpu_check.sh's preset part on this CPU (every run of
the graph started by the launcher a GPU user would use), --record; the generated data written in
parallel; tools/bench_mfu.py's dry run; tools/train_dvae.py's --device."""
import csv
import filecmp
import os
import shutil
import subprocess
import sys
from argparse import Namespace

import pytest
import torch
from conftest import ROOT

from reproduction import toy_data
from reproduction.recipes import PRESETS, SCALES, TABLE6_DATASETS

REPRODUCE = [sys.executable, os.path.join(ROOT, "tools", "reproduce.py")]
TORCHRUN = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "1"]


def test_gpu_preset_dry_run_lists_the_whole_graph_each_run_under_its_gpu_launcher(tmp_path):
    result = subprocess.run([*REPRODUCE, "--preset", "gpu", "--out", tmp_path, "--dry-run"], capture_output=True,
                            text=True, cwd=ROOT)
    assert result.returncode == 0, result.stderr[-3000:]
    listed = [line.split()[1] for line in result.stdout.splitlines()[1:]]
    # small's graph (every target and transfer) with 3 seeds a cell: toy data, the dVAE, 3 targets and the
    # supervised pre-training; Table 3 and 7's fine-tuning from 4 sources, Table 6's 5 datasets, det and seg from 4
    assert len(listed) == 6 + 3 * (4 + 5 + 4 + 4) == 57 and len(set(listed)) == 57
    assert "57 runs for tables 3,4,5,6,7, 0 already done" in result.stdout
    preset = PRESETS["gpu"]("gpu", str(tmp_path), Namespace())
    for name in listed:
        preset.get(name)
    runs = preset.runs
    assert SCALES["gpu"].pretrain_images >= 8 * SCALES["small"].pretrain_images  # "well above small"
    assert runs["pretrain-small-norm_pixel"].argv[:7] == [*TORCHRUN, os.path.join(ROOT, "tools", "pretrain.py")]
    assert "pretrain/mae_vit_small_gpu.py" in runs["pretrain-small-norm_pixel"].argv
    assert runs["cls-imagenet-small-scratch-seed2"].argv[:7] == [*TORCHRUN, os.path.join(ROOT, "tools", "train_cls.py")]
    seg = runs["seg-small-dvae_token-seed1"].argv
    assert seg[:7] == [*TORCHRUN, os.path.join(ROOT, "tools", "train_seg.py")]
    assert seg[seg.index("--launcher") + 1] == "pytorch" and ("--amp" in seg) == torch.cuda.is_available()
    det = runs["det-small-pixel-seed0"].argv
    assert det[:2] == [sys.executable, os.path.join(ROOT, "tools", "train_det.py")]
    assert det[det.index("--num-gpus") + 1] == "1" and "det/mask_rcnn_vit_small_gpu.py" in det
    assert runs["dvae"].argv[:2] == [sys.executable, os.path.join(ROOT, "tools", "train_dvae.py")]
    # --kinds: those runs and what they need (gpu_check.sh runs UperNet's last, once mmcv is built)
    seg = subprocess.run([*REPRODUCE, "--preset", "gpu", "--out", tmp_path, "--dry-run", "--kinds", "seg"],
                         capture_output=True, text=True, cwd=ROOT)
    listed_seg = [line.split()[1] for line in seg.stdout.splitlines()[1:]]
    assert sorted(listed_seg) == sorted(n for n in listed if n.startswith(("seg-", "pretrain-", "dvae", "toy_data")))
    assert len(listed_seg) == 6 + 12
    wrong = subprocess.run([*REPRODUCE, "--preset", "gpu", "--out", tmp_path, "--dry-run", "--kinds", "det,sec"],
                           capture_output=True, text=True, cwd=ROOT)
    assert wrong.returncode == 2 and wrong.stderr.strip().splitlines()[-1].endswith(
        "error: --kinds 'det,sec': sec is no kind of run (pretrain, cls, det, seg)")


@pytest.mark.skipif(torch.cuda.is_available(), reason="the refusal is of a machine without a GPU")
def test_gpu_preset_refuses_a_machine_without_a_gpu_in_one_line(tmp_path):
    result = subprocess.run([*REPRODUCE, "--preset", "gpu", "--out", tmp_path], capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1] == (
        "reproduce.py: error: --preset gpu needs a CUDA GPU, which this machine lacks; --preset gpu-smoke runs the "
        "same runs for a few iterations on a CPU")
    assert not os.path.exists(tmp_path / "data")


@pytest.mark.slow
def test_gpu_check_preset_part_starts_every_run_of_the_graph_and_records_its_tables(tmp_path):
    benchmarks = tmp_path / "benchmarks.md"
    shutil.copy(os.path.join(ROOT, "docs", "benchmarks.md"), benchmarks)
    before = benchmarks.read_text()
    out = tmp_path / "check"
    env = dict(os.environ, PYTHON=sys.executable, PRESET="gpu-smoke", JOBS="2", OUT=str(out), BENCHMARKS=str(benchmarks))
    result = subprocess.run(["bash", os.path.join(ROOT, "scripts", "gpu_check.sh"), "--parts", "preset"],
                            capture_output=True, text=True, cwd=ROOT, env=env)
    assert result.returncode == 0, result.stdout[-4000:]
    runs_dir = out / "preset" / "runs" / "gpu-smoke"
    names = sorted(os.listdir(runs_dir))
    assert len(names) == 23 and all((runs_dir / name / "reproduce.done").is_file() for name in names)
    for name in names:
        if name == "toy_data":
            continue
        command = (runs_dir / name / "reproduce.log").read_text().splitlines()[0]
        kind = name.split("-")[0]
        launcher = "train_det.py" if kind == "det" else "train_dvae.py" if kind == "dvae" else " ".join(TORCHRUN)
        assert launcher in command, (name, command)
    assert "Distributed launcher: pytorch" in (runs_dir / "seg-small-norm_pixel-seed0" / "reproduce.log").read_text()
    pretrain = torch.load(runs_dir / "pretrain-small-pixel" / "checkpoint-last.pth", weights_only=True)
    assert pretrain["config"]["data_backend"] == "gpu" and pretrain["config"]["model"] == "mae_vit_small_patch16"
    pretrain_images = out / "preset" / "data" / "gpu-smoke" / "pretrain" / "train"
    assert {os.path.splitext(f)[1] for _, _, files in os.walk(pretrain_images) for f in files} == {".jpg"}
    # the section: after what the file held, the tables and every finding's verdicts, the runs' times
    text = benchmarks.read_text()
    assert text.startswith(before.rstrip("\n")) and (out / "benchmarks.md").read_text() == text
    section = text[len(before.rstrip("\n")):]
    assert section.count("<!-- tools/reproduce.py --preset gpu-smoke: begin -->") == 1
    assert "23 runs (tables 3,4,5,6,7)" in section and "#### Table 7" in section and "#### Finding 3" in section
    # recorded again: the section is replaced, not added
    again = subprocess.run([*REPRODUCE, "--preset", "gpu-smoke", "--out", out / "preset", "--record", benchmarks],
                           capture_output=True, text=True, cwd=ROOT)
    assert again.returncode == 0 and "23 runs for tables 3,4,5,6,7, 23 already done" in again.stdout, again.stderr[-3000:]
    assert benchmarks.read_text().count("--preset gpu-smoke: begin") == 1
    assert benchmarks.read_text().startswith(before.rstrip("\n"))


def test_generated_sets_written_in_parallel_are_the_files_the_serial_writers_make(tmp_path):
    """The CPU presets' data do not change with the parallel writing; a sharded set does not depend on
    how its shards are run."""
    preset = PRESETS["smoke"]("smoke", str(tmp_path / "parallel"), Namespace())
    preset.write_data()
    serial, s = tmp_path / "serial", SCALES["smoke"]
    toy_data.write_image_folder(str(serial / "pretrain"), s.pretrain_images, size=80, seed=0, num_val=s.pretrain_val_images)
    toy_data.write_classification_sets(str(serial / "cls"), *s.in1k_images, size=64, seed=1, datasets=("imagenet",))
    for k, dataset in enumerate(TABLE6_DATASETS.values()):
        toy_data.write_classification_sets(str(serial / "cls"), *s.cls_images, size=64, seed=2 + k, datasets=(dataset,))
    toy_data.write_coco(str(serial / "coco"), *s.coco_images, size=128, seed=8)
    toy_data.write_ade20k(str(serial / "ade"), *s.ade_images, size=64, seed=9)
    assert_same_tree(serial, tmp_path / "parallel" / "data" / "smoke")

    gpu = PRESETS["gpu-smoke"]("gpu-smoke", str(tmp_path / "gpu"), Namespace())
    gpu.write_data()
    sharded = tmp_path / "sharded"
    toy_data.write_image_folder(str(sharded), 64, size=80, seed=0, num_val=16, shards=2, image_format="jpg")
    assert_same_tree(sharded, tmp_path / "gpu" / "data" / "gpu-smoke" / "pretrain")


def files(root):
    return sorted(os.path.relpath(os.path.join(d, f), root) for d, _, names in os.walk(root) for f in names)


def assert_same_tree(a, b):
    assert files(a) == files(b) and files(a)
    match, mismatch, errors = filecmp.cmpfiles(a, b, files(a), shallow=False)
    assert not mismatch and not errors


def test_mfu_trials_dry_run_compares_each_trial_with_eager_and_keeps_to_its_budget(tmp_path):
    tool = [sys.executable, os.path.join(ROOT, "tools", "bench_mfu.py"), "--device", "cpu", "--quick"]
    result = subprocess.run([*tool, "--out", tmp_path / "a", "--trials", "eager,transformers,cuda_graphs"],
                            capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0, result.stderr[-3000:]
    with open(tmp_path / "a" / "mfu.csv", newline="") as f:
        rows = {row["trial"]: row for row in csv.DictReader(f)}
    assert float(rows["eager"]["img_per_s"]) > 0 and float(rows["eager"]["loss_rel_diff_vs_eager"]) == 0
    # the same weights, images and noise: the peer's first loss is eager's
    assert float(rows["transformers"]["loss_rel_diff_vs_eager"]) < 1e-5
    assert rows["cuda_graphs"]["note"] == "not run: needs a CUDA GPU"
    assert "| eager | 4 |" in (tmp_path / "a" / "mfu.md").read_text()
    spent = subprocess.run([*tool, "--out", tmp_path / "b", "--budget-s", "0", "--trials", "eager,compile"],
                           capture_output=True, text=True, cwd=ROOT)
    assert spent.returncode == 0 and (tmp_path / "b" / "mfu.md").read_text().count("not run: the 0 s budget was spent") == 2
    unknown = subprocess.run([*tool, "--out", tmp_path / "c", "--trials", "eager,fast"], capture_output=True, text=True)
    assert unknown.returncode == 2 and "--trials: unknown trial(s) fast" in unknown.stderr


@pytest.mark.skipif(torch.cuda.is_available(), reason="the refusal is of a machine without a GPU")
def test_dvae_on_a_device_this_machine_lacks_is_one_line(tmp_path):
    toy_data.write_image_folder(str(tmp_path / "images"), 8, size=40, seed=1)
    result = subprocess.run([sys.executable, os.path.join(ROOT, "tools", "train_dvae.py"), "--data", tmp_path / "images",
                             "--output-dir", tmp_path / "run", "--device", "cuda"], capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 2 and result.stderr.strip() == "error: --device cuda: this machine has no CUDA GPU"
    assert not os.path.exists(tmp_path / "run" / "dvae.pth")
