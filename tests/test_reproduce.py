"""tools/reproduce.py (the reproduction package): the whole chain at smoke scale (generate, pre-train
three targets, the dVAE, every transfer for a few iterations and seeds), the tables it exports with
their mean, std and run count, the findings' verdicts, resuming, and the paper preset's plan."""
import csv
import math
import os
import statistics
import signal
import subprocess
import sys
import time

import pytest
from conftest import ROOT

from reproduction.paper_tables import TABLES
from reproduction.report import COLUMNS

REPRODUCE = [sys.executable, os.path.join(ROOT, "tools", "reproduce.py")]


def reproduce(*args):
    result = subprocess.run([*REPRODUCE, *args], capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0, (result.stdout + result.stderr)[-4000:]
    return result.stdout


def read_csv(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def record_values(out, run_dirs, metric):
    """The metric of each ';'-separated run as its own tool recorded it in results/runs/*.csv."""
    return [record_value(out, run_dir, metric) for run_dir in run_dirs.split(";")]


def record_value(out, run_dir, metric):
    """The metric as the run's own tool recorded it in results/runs/*.csv."""
    run_dir = os.path.abspath(os.path.join(out, run_dir))
    for kind in ("cls", "det", "seg"):
        path = os.path.join(out, "results", "runs", f"{kind}.csv")
        rows = [r for r in read_csv(path) if r["run_dir"] == run_dir] if os.path.isfile(path) else []
        if rows:
            return float(rows[-1][metric])
    raise AssertionError(f"no record for {run_dir}")


METRIC = {3: "top1", 5: "mIoU", 6: "top1"}
SMOKE_RUNS_PER_CELL = {3: 2, 4: 2, 5: 2, 6: 1, 7: 2}  # the smoke preset's seeds per cell of each table


def expected_verdict(row):
    """The rule stated in reproduction/findings.py, recomputed here from the numbers findings.csv reports."""
    n_a, n_b = int(row["n_a"]), int(row["n_b"])
    if min(n_a, n_b) < 2:
        return "not testable"
    s_a, s_b = float(row["std_a"]), float(row["std_b"])
    se = math.sqrt(((n_a - 1) * s_a ** 2 + (n_b - 1) * s_b ** 2) / (n_a + n_b - 2) * (1 / n_a + 1 / n_b))
    d = float(row["mean_a"]) - float(row["mean_b"])
    if row["claim"] == "greater":
        return "reproduced" if d > 2 * se else "contradicted" if d < -2 * se else "within noise"
    return "contradicted" if abs(d) - 2 * se > 1.0 else "reproduced" if abs(d) + 2 * se <= 1.0 else "within noise"


@pytest.mark.slow
def test_smoke_chain_writes_all_tables_from_the_run_records_and_a_rerun_only_rewrites_them(tmp_path):
    out = str(tmp_path)
    first = reproduce("--preset", "smoke", "--out", out, "--jobs", "2")  # two runs at a time share the result CSVs
    tables = os.path.join(out, "results", "tables")
    measured = 0
    for t, spec in TABLES.items():
        with open(os.path.join(tables, f"table{t}.csv"), newline="") as f:
            # the original eight columns in their order, then the seeds' spread and count
            assert next(csv.reader(f)) == list(COLUMNS) == [
                "table", "row", "column", "paper_value", "measured_value", "preset", "run_dir", "note",
                "measured_std", "n_runs"]
        rows = read_csv(os.path.join(tables, f"table{t}.csv"))
        assert len(rows) == len(spec.rows) * len(spec.columns)  # one row per cell
        for row in rows:
            assert row["table"] == str(t) and row["preset"] == "smoke"
            if row["measured_value"] == "":
                assert row["note"], row  # every empty cell says why
                assert row["measured_std"] == row["n_runs"] == "", row
                continue
            measured += 1
            assert int(row["n_runs"]) == SMOKE_RUNS_PER_CELL[t], row
            assert (row["measured_std"] == "") == (SMOKE_RUNS_PER_CELL[t] == 1), row  # no spread from one run
            if row["row"] == "difference":  # computed from the two measured rows above it
                continue
            assert float(row["measured_value"]) != float(row["paper_value"]), row
            if t == 4:
                metric = "ap_box" if row["column"].startswith("APbox") else "ap_mask"
            elif t == 7:
                metric = {"IN1K": "top1", "COCO": "ap_box", "ADE20K": "mIoU"}[row["column"].split()[0]]
            else:
                metric = METRIC[t]
            # the value is the mean of the runs' own records (one per seed, each its own run), not the paper's
            values = record_values(out, row["run_dir"], metric)
            assert len(set(row["run_dir"].split(";"))) == len(values) == int(row["n_runs"])
            assert all(f"-seed{seed}" in d for seed, d in enumerate(row["run_dir"].split(";")))
            assert float(row["measured_value"]) == pytest.approx(statistics.fmean(values), abs=0.051)
            if len(values) > 1:
                assert float(row["measured_std"]) == pytest.approx(statistics.stdev(values), abs=0.051)
        assert any(r["measured_value"] for r in rows), f"table {t} has no measured value"
    table7 = {(r["row"], r["column"]): r["measured_value"] for r in read_csv(os.path.join(tables, "table7.csv"))}
    for column in ("IN1K ViT-B", "COCO ViT-B", "ADE20K ViT-B"):
        token, norm = float(table7["dVAE token", column]), float(table7["pixel (w/ norm)", column])
        assert float(table7["difference", column]) == pytest.approx(token - norm, abs=0.11)
    assert measured == 2 + 4 + 2 + 5 + 12  # the ViT-B column of every MAE / baseline row, and Table 7's differences
    for name in ("tables.md", "differences_vs_paper.png", "mae_vs_baseline.png"):
        assert os.path.getsize(os.path.join(tables, name)) > 500, name
    assert " ± " in open(os.path.join(tables, "tables.md")).read()

    # every verdict follows the stated rule from the numbers beside it, which are the tables' cells
    verdicts = read_csv(os.path.join(out, "results", "findings.csv"))
    cells = {(int(r["table"]), r["row"], r["column"]): r for t in TABLES
             for r in read_csv(os.path.join(tables, f"table{t}.csv"))}
    assert {int(r["finding"]) for r in verdicts} == {1, 2, 3, 4}
    compared = [r for r in verdicts if r["row_a"]]
    assert len(compared) == 1 + 3 + 6
    for r in compared:
        assert r["verdict"] == expected_verdict(r), r
        a, b = cells[int(r["table"]), r["row_a"], r["column"]], cells[int(r["table"]), r["row_b"], r["column"]]
        assert float(r["mean_a"]) == pytest.approx(float(a["measured_value"]), abs=0.051)
        assert float(r["std_b"]) == pytest.approx(float(b["measured_std"]), abs=0.051)
        assert int(r["n_a"]) == int(a["n_runs"]) == 2
    assert [r["verdict"] for r in verdicts if r["finding"] == "4"] == ["not testable"]
    assert "## Finding 1" in open(os.path.join(out, "results", "findings.md")).read()
    assert f"reconstructions: {os.path.join(out, 'runs', 'smoke', 'pretrain-tiny-pixel', 'figures')}" in first
    assert "dVAE tokenizer reconstructions:" in first

    records = {k: len(read_csv(os.path.join(out, "results", "runs", f"{k}.csv"))) for k in ("cls", "det", "seg")}
    markers = {p: os.path.getmtime(p) for p in _markers(out)}
    again = reproduce("--preset", "smoke", "--out", out)
    assert "35 runs for tables 3,4,5,6,7, 35 already done" in again and "[reproduce] 1/" not in again
    assert {p: os.path.getmtime(p) for p in _markers(out)} == markers
    assert {k: len(read_csv(os.path.join(out, "results", "runs", f"{k}.csv"))) for k in records} == records


def _markers(out):
    return sorted(os.path.join(d, f) for d, _, files in os.walk(os.path.join(out, "runs")) for f in files
                  if f == "reproduce.done")


@pytest.mark.slow
def test_killed_reproduction_finishes_without_repeating_completed_runs(tmp_path):
    out = str(tmp_path)
    proc = subprocess.Popen([*REPRODUCE, "--preset", "smoke", "--out", out, "--tables", "3"], cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    scratch = os.path.join(out, "runs", "smoke", "cls-imagenet-tiny-scratch-seed0", "reproduce.done")
    deadline = time.time() + 300
    while not os.path.isfile(scratch) and proc.poll() is None and time.time() < deadline:
        time.sleep(0.2)
    assert proc.poll() is None, "finished before it could be interrupted"
    os.killpg(proc.pid, signal.SIGKILL)  # the tool and the run it had started
    proc.wait()
    done_before = {p: os.path.getmtime(p) for p in _markers(out)}
    assert len(done_before) == 2  # the data and the first seed's from-scratch run

    result = reproduce("--preset", "smoke", "--out", out, "--tables", "3")
    assert "6 runs for tables 3, 2 already done" in result  # data, pre-training, 2 seeds x (scratch, MAE)
    assert "toy_data" not in result and "cls-imagenet-tiny-scratch-seed0 ..." not in result
    assert {p: os.path.getmtime(p) for p in done_before} == done_before
    rows = read_csv(os.path.join(out, "results", "tables", "table3.csv"))
    assert {r["row"] for r in rows if r["measured_value"]} == {"scratch, our impl.", "MAE"}


def test_paper_preset_writes_torchrun_commands_in_dependency_order(tmp_path):
    out = reproduce("--preset", "paper", "--out", str(tmp_path), "--data-root", "/data", "--nnodes", "4",
                    "--node-rank", "1", "--master-addr", "head", "--dry-run")
    assert "pending pretrain-B-norm_pixel" in out
    out = reproduce("--preset", "paper", "--out", str(tmp_path), "--data-root", "/data", "--nnodes", "4",
                    "--node-rank", "1", "--master-addr", "head", "--dalle-encoder", "/models/encoder.pkl")
    script = (tmp_path / "results" / "paper_commands.sh").read_text()
    commands = [line for line in script.splitlines() if line and not line.startswith("#") and not line.startswith("set ")]
    names = [line[2:].split(" (")[0] for line in script.splitlines() if line.startswith("# ") and "(pending)" in line]
    assert names.index("pretrain-B-norm_pixel") < names.index("cls-imagenet-B-norm_pixel-seed0")
    assert names.index("cls-imagenet-B-scratch-seed0") < names.index("det-B-supervised-seed0")
    assert "pretrain-H-dvae_token" in names and "cls-inat2018-H448-norm_pixel-seed0" in names
    assert not any("-seed1" in name for name in names)  # one seed per cell at paper scale
    pretrain = next(c for c in commands if "tools/pretrain.py" in c and "mae_vit_large.py" in c and "target=norm_pixel" in c)
    assert pretrain.startswith("torchrun --nnodes=4 --node_rank=1 --nproc_per_node=8 --master_addr=head")
    assert "--data /data/imagenet/train" in pretrain and "--resume auto" in pretrain
    det = next(c for c in commands if "train_det.py" in c)
    assert "--num-machines 4 --machine-rank 1 --dist-url tcp://head:29500" in det and "train.seed=0" in det
    assert all("seed=0" in c for c in commands if "train_cls.py" in c or "train_seg.py" in c)
    token = next(c for c in commands if "target=dvae_token" in c)
    assert "tokenizer=/models/encoder.pkl" in token
    # tables exist from the start, every cell empty with its reason
    rows = read_csv(tmp_path / "results" / "tables" / "table4.csv")
    assert all(r["measured_value"] == "" and r["note"] for r in rows)
    assert {r["note"] for r in rows if r["row"] == "MAE"} == {"1 of 1 runs not finished"}


def test_parallel_runs_start_after_their_dependencies_and_a_failure_stops_new_starts(tmp_path):
    from reproduction.recipes import Run
    from reproduction.run import execute_all

    spans = {}

    def step(name, seconds=0.3, fail=False):
        def func():
            start = time.perf_counter()
            time.sleep(seconds)
            if fail:
                raise SystemExit(f"error: {name} failed")
            spans[name] = (start, time.perf_counter())
        return func

    class Plan:
        runs = {"data": Run(func=step("data")), "a": Run(func=step("a"), deps=("data",)),
                "b": Run(func=step("b"), deps=("data",)), "c": Run(func=step("c"), deps=("a", "b"))}

    for name, run in Plan.runs.items():
        run.name, run.out_dir = name, str(tmp_path / name)
    execute_all(Plan, ["data", "a", "b", "c"], jobs=2)
    assert spans["a"][0] >= spans["data"][1] and spans["b"][0] >= spans["data"][1]
    assert spans["c"][0] >= max(spans["a"][1], spans["b"][1])
    assert spans["b"][0] < spans["a"][1] and spans["a"][0] < spans["b"][1]  # a and b overlapped
    assert all(os.path.isfile(run.marker) for run in Plan.runs.values())

    spans.clear()
    Plan.runs = {"a": Run(func=step("a", fail=True)), "b": Run(func=step("b", 0.6)), "c": Run(func=step("c"), deps=("a",)),
                 "d": Run(func=step("d"))}
    for name, run in Plan.runs.items():
        run.name, run.out_dir = name, str(tmp_path / "second" / name)
    with pytest.raises(SystemExit, match="error: a failed"):
        execute_all(Plan, ["a", "b", "c", "d"], jobs=2)
    assert set(spans) == {"b"}  # the run already going finished; nothing started after the failure
    assert not os.path.isfile(Plan.runs["a"].marker) and os.path.isfile(Plan.runs["b"].marker)


def handmade_cells():
    """Cells with hand-made means: Table 3 clearly apart over 3 runs each, Table 5 one run each, Table 7's
    normalised vs plain pixels apart by less than 2 SE; every other cell unmeasured."""
    from reproduction.plan import Cell

    measured = {(3, "MAE", "ViT-B"): (70.0, 1.0, 3), (3, "scratch, our impl.", "ViT-B"): (60.0, 1.0, 3),
                (5, "MAE", "ViT-B"): (40.0, None, 1), (5, "supervised", "ViT-B"): (30.0, None, 1),
                (7, "pixel (w/ norm)", "IN1K ViT-B"): (70.0, 2.0, 3),
                (7, "pixel (w/o norm)", "IN1K ViT-B"): (68.0, 2.0, 3)}
    cells = []
    for t, spec in TABLES.items():
        for row, values in spec.rows.items():
            for column, paper in zip(spec.columns, values):
                mean, std, n = measured.get((t, row, column), (None, None, 0))
                cells.append(Cell(t, row, column, paper, measured=mean, std=std, n_runs=n))
    return cells


def bars_and_errors(ax):
    """gid -> (bar, its error bar's (low, high) or None, the texts drawn over it)."""
    from matplotlib.container import ErrorbarContainer

    errors = {round(float(seg[0][0]), 6): (float(seg[0][1]), float(seg[1][1]))
              for c in ax.containers if isinstance(c, ErrorbarContainer) for seg in c.lines[2][0].get_segments()}
    out = {}
    for bar in ax.patches:
        if bar.get_gid():
            x = bar.get_x() + bar.get_width() / 2
            texts = [t.get_text() for t in ax.texts if abs(t.xy[0] - x) <= bar.get_width()]
            out[bar.get_gid()] = (bar, errors.get(round(x, 6)), texts)
    return out


def test_mae_vs_baseline_draws_each_cells_std_and_marks_a_one_run_pair_not_testable():
    from reproduction.report import draw_mae_vs_baseline

    measured, paper = draw_mae_vs_baseline(handmade_cells(), "handmade").axes
    bars = bars_and_errors(measured)
    assert set(bars) == {"Table 3 ViT-B: MAE", "Table 3 ViT-B: scratch, our impl.", "Table 5 ViT-B: MAE",
                         "Table 5 ViT-B: supervised"}  # Table 4 is not measured: no bar
    mae, error, texts = bars["Table 3 ViT-B: MAE"]
    assert mae.get_height() == 70.0 and error == pytest.approx((69.0, 71.0))  # mean ± the cell's std
    assert not mae.get_hatch() and "reproduced" in " ".join(texts)
    assert "std" in measured.get_title()
    for gid in ("Table 5 ViT-B: MAE", "Table 5 ViT-B: supervised"):
        bar, error, texts = bars[gid]
        assert bar.get_hatch() and error is None  # one run: no spread, and no result
        assert "not testable\n(n=1)" in texts
    assert sorted(b.get_height() for b in paper.patches) == sorted(
        [TABLES[3].rows["MAE"][0], TABLES[3].rows["scratch, our impl."][0], TABLES[5].rows["MAE"][0],
         TABLES[5].rows["supervised"][0]])


def test_differences_figure_draws_each_findings_difference_with_2_se_beside_the_papers():
    from reproduction.report import draw_differences

    (ax,) = draw_differences(handmade_cells(), "handmade").axes
    bars = bars_and_errors(ax)
    table3 = "Table 3 ViT-B: MAE - scratch, our impl."
    table7 = "Table 7 IN1K ViT-B: pixel (w/ norm) - pixel (w/o norm)"
    assert set(bars) == {table3, f"paper {table3}", "Table 5 ViT-B: MAE - supervised",
                         "paper Table 5 ViT-B: MAE - supervised", table7, f"paper {table7}"}
    paper = TABLES[3].rows["MAE"][0] - TABLES[3].rows["scratch, our impl."][0]
    assert bars[f"paper {table3}"][0].get_height() == pytest.approx(paper)
    bar, error, texts = bars[table3]
    two_se = 2 * math.sqrt(1.0 * (1 / 3 + 1 / 3))  # pooled std 1 over 3 + 3 runs
    assert bar.get_height() == 10.0 and error == pytest.approx((10.0 - two_se, 10.0 + two_se))
    assert not bar.get_hatch() and "reproduced" in texts
    bar, error, texts = bars[table7]  # 2 apart, 2 SE = 3.27
    assert bar.get_height() == 2.0 and error == pytest.approx((2.0 - 2 * two_se, 2.0 + 2 * two_se))
    assert bar.get_hatch() and "within noise" in texts
    bar, error, texts = bars["Table 5 ViT-B: MAE - supervised"]
    assert bar.get_hatch() and error is None and "not testable\n(n=1)" in texts
    assert "2 SE" in " ".join(t.get_text() for t in ax.get_legend().get_texts())


def test_the_demos_figure_2_is_the_pixel_target_pre_trainings_where_there_is_one(tmp_path):
    from reproduction.recipes import CpuPreset
    from reproduction.report import FIGURE_2_CAPTIONS, reconstructions

    preset = CpuPreset("small", str(tmp_path), None)
    runs = tmp_path / "runs" / "small"
    (runs / "pretrain-tiny-norm_pixel" / "figures").mkdir(parents=True)
    (runs / "pretrain-tiny-norm_pixel" / "figures" / "reconstruction-epoch0040.png").write_bytes(b"png")
    assert reconstructions(preset) is None  # never the norm_pixel run's figure in its place
    for epoch in (20, 40):
        (runs / "pretrain-tiny-pixel" / "figures").mkdir(parents=True, exist_ok=True)
        (runs / "pretrain-tiny-pixel" / "figures" / f"reconstruction-epoch{epoch:04d}.png").write_bytes(b"png")
    assert reconstructions(preset) == (str(runs / "pretrain-tiny-pixel" / "figures" / "reconstruction-epoch0040.png"),
                                       FIGURE_2_CAPTIONS["pixel"])
    # tiny pre-trains normalised pixels only: its figure, drawn normalised and said to be
    tiny = CpuPreset("tiny", str(tmp_path), None)
    (tmp_path / "runs" / "tiny" / "pretrain-tiny-norm_pixel" / "figures").mkdir(parents=True)
    (tmp_path / "runs" / "tiny" / "pretrain-tiny-norm_pixel" / "figures" / "reconstruction-epoch0020.png").write_bytes(b"png")
    path, caption = reconstructions(tiny)
    assert path.endswith(os.path.join("pretrain-tiny-norm_pixel", "figures", "reconstruction-epoch0020.png"))
    assert "per-patch normalised" in caption


def test_cpu_presets_supervised_baseline_is_pre_trained_on_the_pre_training_images_and_tiny_says_what_it_skips(tmp_path):
    from argparse import Namespace

    from reproduction.plan import plan
    from reproduction.recipes import PRESETS

    tiny = PRESETS["tiny"]("tiny", str(tmp_path), Namespace(data_seed=0))
    det = tiny.get("det-tiny-supervised-seed0")
    assert "pretrain-tiny-supervised" in det.deps
    supervised = tiny.get("pretrain-tiny-supervised").argv
    assert supervised[1].endswith("train_cls.py") and "cls/scratch_tiny_cpu.py" in supervised
    assert supervised[supervised.index("--data-root") + 1] == os.path.join(tiny.data, "pretrain")
    cells = {(c.table, c.row, c.column): c for c in plan(tiny, [4, 5, 7])}
    assert len(cells[4, "supervised", "APbox ViT-B"].runs) == 3 and len(cells[5, "MAE", "ViT-B"].runs) == 3
    skipped = cells[7, "dVAE token", "IN1K ViT-B"]
    assert not skipped.runs and "--preset small" in skipped.note
    assert "--preset small" in cells[7, "pixel (w/o norm)", "COCO ViT-B"].note
    paper = PRESETS["paper"]("paper", str(tmp_path), Namespace(data_root="/data", submit=False, nnodes=1, node_rank=0,
                                                               nproc_per_node=8, master_addr="h", master_port=1))
    assert paper.checkpoint("supervised", "B")[1] == "cls-imagenet-B-scratch-seed0"  # the paper's: ImageNet's labels


def test_another_data_seed_draws_other_data_into_folders_of_its_own(tmp_path):
    from argparse import Namespace

    from reproduction.recipes import PRESETS

    first, other = (PRESETS["smoke"]("smoke", str(tmp_path), Namespace(data_seed=seed)) for seed in (0, 1))
    assert other.runs_dir.endswith(os.path.join("runs", "smoke-data1")) and other.results.endswith("results-data1")
    assert first.runs_dir != other.runs_dir and first.data != other.data
    assert "seed=1" in other.get("pretrain-tiny-norm_pixel").argv
    first.write_data()
    other.write_data()
    image = os.path.join("coco", "train", "train_000000.jpg")
    with open(os.path.join(first.data, image), "rb") as a, open(os.path.join(other.data, image), "rb") as b:
        assert a.read() != b.read()
    result = subprocess.run([*REPRODUCE, "--preset", "paper", "--data-root", "/d", "--data-seed", "1", "--dry-run"],
                            capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 2 and "--data-seed" in result.stderr


# -- the ablations presets: Table 1, Figures 5 and 9 ---------------------------------------------------
def ablation_names(lin_seeds, ft_seeds):
    """The runs the ablations graph must hold: a pre-training per Table 1 / Figure 5 source, each fine-tuned
    and linearly probed for the first n seeds, and the default's partial fine-tunings (seed 0)."""
    from reproduction.plan import DEFAULT, FIGURE5_RATIOS, TABLE1_SOURCES

    sources = {s for entries in TABLE1_SOURCES.values() for s in entries.values()}
    sources |= {DEFAULT if r == 0.75 else f"{DEFAULT}-mask{r}" for r in FIGURE5_RATIOS}
    names = {"toy_data"} | {f"pretrain-tiny-{s}" for s in sources}
    names |= {f"cls-imagenet-tiny-{s}-lin-seed{k}" for s in sources for k in range(lin_seeds)}
    names |= {f"cls-imagenet-tiny-{s}-seed{k}" for s in sources for k in range(ft_seeds)}
    return names | {f"cls-imagenet-tiny-{DEFAULT}-partial{k}-seed0" for k in ("0.5", "1", "2", "3")}


def test_ablations_dry_run_lists_the_graph_and_each_run_changes_only_its_setting(tmp_path):
    import argparse

    from reproduction import findings
    from reproduction.plan import ablation_plan, ordered
    from reproduction.recipes import PRESETS, SCALES

    out = reproduce("--preset", "ablations", "--out", str(tmp_path), "--dry-run")
    listed = [line.split()[1] for line in out.splitlines()[1:]]
    names = ablation_names(lin_seeds=3, ft_seeds=2)
    assert f"preset ablations: {len(names)} runs for Table 1 and Figures 5 and 9, 0 already done" in out
    assert set(listed) == names and len(listed) == len(names) == 71

    preset = PRESETS["ablations"]("ablations", str(tmp_path), argparse.Namespace(data_seed=0))
    cells = ablation_plan(preset)
    assert ordered(preset, [r for c in cells for r in c.runs]) == listed
    assert all(listed.index(dep) < i for i, name in enumerate(listed) for dep in preset.runs[name].deps)
    # every finding-4 comparison names cells of the plan, each with its seeds
    keys = {(c.table, c.row, c.column): c for c in cells}
    for comp in (c for c in findings.COMPARISONS if c.finding == 4):
        for row in (comp.row_a, comp.row_b):
            assert len(keys[comp.table, row, comp.column].runs) == {"lin": 3, "ft": 2}[comp.column]
    default = preset.runs["pretrain-tiny-norm_pixel"].argv
    sweep = preset.runs["pretrain-tiny-norm_pixel-mask0.1"].argv
    assert sweep[:-1] == [a.replace("pretrain-tiny-norm_pixel", "pretrain-tiny-norm_pixel-mask0.1") for a in default]
    assert sweep[-1] == "mask_ratio=0.1" and "model_overrides.encoder_mask_token=True" in \
        preset.runs["pretrain-tiny-norm_pixel-enctoken"].argv
    assert preset.runs["pretrain-tiny-norm_pixel-aug_none"].argv[-1] == "augmentation=none"
    lin = preset.runs["cls-imagenet-tiny-norm_pixel-mask0.1-lin-seed2"]
    ft = preset.runs["cls-imagenet-tiny-norm_pixel-mask0.1-seed1"]
    assert lin.deps == ft.deps == ("toy_data", "pretrain-tiny-norm_pixel-mask0.1")
    assert "cls/linprobe_tiny_cpu.py" in lin.argv and "seed=2" in lin.argv
    assert lin.argv[-1] == f"warmup_epochs={preset.scale.cls_epochs // 9}"
    assert lin.out_dir == lin.argv[lin.argv.index("--output-dir") + 1] == os.path.join(
        str(tmp_path), "runs", "ablations", "cls-imagenet-tiny-norm_pixel-mask0.1-lin-seed2")
    assert "cls/tiny_cpu.py" in ft.argv and f"epochs={SCALES['tiny'].cls_epochs}" in ft.argv  # the tiny preset's recipe
    partial = preset.runs["cls-imagenet-tiny-norm_pixel-partial0.5-seed0"].argv
    assert "cls/partial_tiny_cpu.py" in partial and partial[-1] == "blocks=0.5"
    with pytest.raises(ValueError, match="pre-training setting 'dec'"):
        preset.get("pretrain-tiny-norm_pixel-dec")
    result = subprocess.run([*REPRODUCE, "--preset", "ablations", "--tables", "3", "--dry-run"], capture_output=True,
                            text=True, cwd=ROOT)
    assert result.returncode == 2 and "runs Table 1 and Figures 5 and 9" in result.stderr


@pytest.mark.slow
def test_ablations_smoke_chain_writes_table1_figures_and_finding_4_from_the_run_records(tmp_path):
    from reproduction.paper_tables import TABLE1
    from reproduction.plan import TABLE1_SOURCES, table1_entries
    from reproduction.report import TABLE1_COLUMNS

    out = str(tmp_path)
    first = reproduce("--preset", "ablations-smoke", "--out", out, "--jobs", "2")
    tables = os.path.join(out, "results", "tables")
    with open(os.path.join(tables, "table1.csv"), newline="") as f:
        assert next(csv.reader(f)) == list(TABLE1_COLUMNS)
    rows = read_csv(os.path.join(tables, "table1.csv"))
    assert [(r["subtable"], r["entry"]) for r in rows] == list(table1_entries())
    for r in rows:
        paper = TABLE1[r["subtable"]].get(r["entry"])
        assert (r["paper_ft"], r["paper_lin"]) == (tuple(f"{v:.1f}" for v in paper) if paper else ("", ""))
        if r["entry"] not in TABLE1_SOURCES[r["subtable"]]:
            assert r["ft"] == r["lin"] == r["ft_n"] == "" and r["note"] == "not run by this preset", r
            continue
        for column, n in (("ft", 2), ("lin", 2)):  # ablations-smoke: 2 seeds of each
            dirs = r[f"{column}_run_dirs"].split(";")
            assert [d.rsplit("-seed", 1)[1] for d in dirs] == [str(k) for k in range(n)]
            assert dirs[0].endswith("-lin-seed0") == (column == "lin")
            values = record_values(out, r[f"{column}_run_dirs"], "top1")
            assert int(r[f"{column}_n"]) == n and float(r[column]) == pytest.approx(statistics.fmean(values), abs=0.051)
            assert float(r[f"{column}_std"]) == pytest.approx(statistics.stdev(values), abs=0.051)
        assert (r["note"] == "no such entry in the paper") == (paper is None), r
    default = [r for r in rows if r["ft_run_dirs"].split(";")[0].endswith(os.sep + "cls-imagenet-tiny-norm_pixel-seed0")]
    assert len(default) == len(TABLE1)  # one default pre-training, shared by every sub-table
    assert len({r["ft"] + r["lin"] for r in default}) == 1
    for name in ("figure5.png", "figure9.png"):
        assert os.path.getsize(os.path.join(tables, name)) > 500, name

    verdicts = read_csv(os.path.join(out, "results", "findings.csv"))
    assert [r["verdict"] for r in verdicts if r["finding"] in ("1", "2", "3")] == ["not testable"] * 3
    assert all("--preset tiny" in r["note"] for r in verdicts if r["finding"] in ("1", "2", "3"))
    sweep = [r for r in verdicts if r["finding"] == "4"]
    assert [(r["column"], r["row_a"], r["row_b"], r["claim"]) for r in sweep] == [
        ("lin", "75%", "10%", "greater"), ("lin", "75%", "30%", "greater"), ("lin", "75%", "90%", "greater"),
        ("lin", "75%", "50%", "greater"), ("ft", "75%", "50%", "equal")]
    for r in sweep:
        assert r["table"] == "Figure 5" and int(r["n_a"]) == int(r["n_b"]) == 2
        assert r["verdict"] == expected_verdict(r), r
    default_lin = next(r for r in rows if r["entry"] == "pixel (w/ norm)")  # the default: the sweep's 75%
    assert float(sweep[0]["mean_a"]) == pytest.approx(float(default_lin["lin"]), abs=0.051)
    assert "## Finding 4" in open(os.path.join(out, "results", "findings.md")).read()
    assert "Table 1: " in first and "figure5.png" in first and "figure9.png" in first

    again = reproduce("--preset", "ablations-smoke", "--out", out)
    names = len(ablation_names(lin_seeds=2, ft_seeds=2))
    assert f"{names} runs for Table 1 and Figures 5 and 9, {names} already done" in again


def test_figures_5_and_9_draw_the_papers_curves_beside_each_measured_mean_and_std_with_finding_4s_verdicts():
    from reproduction.findings import SWEEP
    from reproduction.paper_tables import FIGURE5, FIGURE9
    from reproduction.plan import PARTIAL, Cell
    from reproduction.report import draw_figure5, draw_figure9

    lin = {"10%": (40.0, 1.0), "30%": (50.0, 1.0), "50%": (55.0, 1.0), "75%": (60.0, 1.0), "90%": (59.0, 1.0)}
    cells = [Cell(SWEEP, ratio, "lin", None, measured=m, std=s, n_runs=3) for ratio, (m, s) in lin.items()]
    cells += [Cell(SWEEP, ratio, "ft", None, measured=m, std=0.5, n_runs=2) for ratio, m in (("50%", 80), ("75%", 80.5))]
    cells += [Cell(PARTIAL, blocks, "partial", None, measured=m, n_runs=1) for blocks, m in (("0", 60.0), ("1", 70.0))]
    paper_ft, measured_ft, paper_lin, measured_lin = draw_figure5(cells, "handmade").axes
    assert list(paper_lin.lines[0].get_ydata()) == [FIGURE5[r][1] for r in sorted(FIGURE5)]
    assert list(paper_ft.lines[0].get_ydata()) == [FIGURE5[r][0] for r in sorted(FIGURE5)]
    for ax, column in ((measured_lin, "lin"), (measured_ft, "ft")):
        (points,) = ax.containers  # the measured means, error bars ± std
        means = [c.measured for c in cells if c.table == SWEEP and c.column == column]
        assert list(points.lines[0].get_ydata()) == means
        lows = [seg[0][1] for seg in points.lines[2][0].get_segments()]
        assert lows == pytest.approx([c.measured - c.std for c in cells if c.table == SWEEP and c.column == column])
    below = measured_lin.get_xlabel()  # finding 4's verdicts under the measured panels
    assert "75% > 10%: reproduced (d = +20.0, 2 SE = 1.6)" in below and "75% > 90%: within noise" in below
    assert "75% ≈ 50%: within noise (d = +0.5, 2 SE = 1.0)" in measured_ft.get_xlabel()
    assert "n=3" in [t.get_text() for t in measured_lin.texts]
    paper, measured = draw_figure9(cells, "handmade").axes
    assert [list(line.get_ydata()) for line in paper.lines[:2]] == [list(FIGURE9["MAE"].values()),
                                                                 list(FIGURE9["MoCo v3"].values())]
    (points,) = measured.containers
    assert list(points.lines[0].get_xdata()) == [0.0, 1.0] and list(points.lines[0].get_ydata()) == [60.0, 70.0]
    assert draw_figure5([c for c in cells if c.table == PARTIAL], "handmade") is None
