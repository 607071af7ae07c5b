"""The tables, figures and findings of a reproduction, from the runs' result rows: each cell the mean
(± sample std) over its seeds' runs, written to results/tables/ (tableN.csv, tables.md, *.png),
results/findings.{csv,md} and results/timings.csv; the paper preset's command script. The figures
put each finding's measured difference between rows beside the paper's (the values themselves are not
comparable at toy scale), show every measured bar's error bar and mark the bars whose comparison is
no result (not testable, within noise) as such."""
from __future__ import annotations

import csv
import os
import shlex
import statistics
import time
from collections.abc import Sequence

import torch
from typing import TYPE_CHECKING, cast

from . import findings
from .paper_tables import FIGURE5, FIGURE9, TABLES
from .plan import FIGURE9_BLOCKS, PARTIAL, Cell, table1_entries
from .recipes import CpuPreset, Preset
from .run import last_record

if TYPE_CHECKING:  # matplotlib is imported where a figure is drawn
    from matplotlib.figure import Figure

# measured_value is the mean over the cell's seeds; the two added columns come last so that readers
# of the original eight columns keep working
COLUMNS = ("table", "row", "column", "paper_value", "measured_value", "preset", "run_dir", "note",
           "measured_std", "n_runs")


def measure(cells: Sequence[Cell], preset: Preset) -> None:
    # one read per run: several cells (box and mask AP, Table 3's MAE and Table 7's norm-pixel) share runs
    records = {name: last_record(run) if run.done else None for name, run in preset.runs.items()}
    for cell in cells:
        if not cell.runs:
            continue
        values = [float(record[cell.metric]) for record in (records[run] for run in cell.runs) if record is not None]
        if len(values) < len(cell.runs):
            cell.note = cell.note or f"{len(cell.runs) - len(values)} of {len(cell.runs)} runs not finished"
        if values:
            cell.measured, cell.n_runs = statistics.fmean(values), len(values)
            cell.std = statistics.stdev(values) if len(values) > 1 else None
    for cell in cells:  # Table 7's last row: the measured difference, where both rows are measured
        if cell.table == 7 and cell.row == "difference":
            pair = {c.row: c for c in cells if c.table == 7 and c.column == cell.column}
            token, norm = pair.get("dVAE token"), pair.get("pixel (w/ norm)")
            if token is None or norm is None or token.measured is None or norm.measured is None:
                cell.note += "; a row is not measured under this preset"
            else:
                cell.measured, cell.n_runs = token.measured - norm.measured, min(token.n_runs, norm.n_runs)
                # the spread of one run's difference: the rows' runs are independent, so variances add
                if token.std is not None and norm.std is not None:
                    cell.std = (token.std ** 2 + norm.std ** 2) ** 0.5


def scale_note(preset: Preset) -> str:
    if isinstance(preset, CpuPreset):
        s = preset.scale
        return (f"{preset.name} preset: the ViT-B column holds {preset.ENCODER}, pre-trained {s.pretrain_epochs} "
                f"epochs on {s.pretrain_images} generated images, and the transfer data are generated too: "
                f"compare rows with each other, not values with the paper's")
    return ""


def write_tables(cells: Sequence[Cell], preset: Preset, tables: Sequence[int]) -> None:
    folder = os.path.join(preset.results, "tables")
    os.makedirs(folder, exist_ok=True)
    note = f"{preset.name} preset: tiny ViT on generated data (see tables.md)" if scale_note(preset) else ""
    for t in tables:
        path = os.path.join(folder, f"table{t}.csv")
        with open(path + ".tmp", "w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(COLUMNS)
            for c in (c for c in cells if c.table == t):
                # every seed's run, ";"-separated: the cell is their mean
                run_dir = ";".join(os.path.relpath(preset.runs[run].out_dir, preset.root_dir) for run in c.runs)
                cell_note = c.note or (note if c.measured is not None else "")
                writer.writerow([t, c.row, c.column, _fmt(c.paper), _fmt(c.measured), preset.name, run_dir, cell_note,
                                 _fmt(c.std), c.n_runs if c.measured is not None else ""])
        os.replace(path + ".tmp", path)
    with open(os.path.join(folder, "tables.md"), "w") as f:
        f.write(markdown(cells, preset, tables))


def _fmt(value):
    return "" if value is None else f"{value:.1f}" if isinstance(value, float) else str(value)


def mean_std(cell: Cell) -> str:
    """'mean ± std (n=N)', 'value (n=1)' or '–'."""
    if cell.measured is None:
        return "–"
    spread = f" ± {_fmt(cell.std)}" if cell.std is not None else ""
    return f"{_fmt(cell.measured)}{spread} (n={cell.n_runs})"


def markdown(cells: Sequence[Cell], preset: Preset, tables: Sequence[int]) -> str:
    out = [f"# MAE Tables {', '.join(map(str, tables))}: measured ({preset.name} preset) / paper\n",
           "Measured cells are the mean ± sample standard deviation over n runs with the same seeds in every row.\n"]
    if scale_note(preset):
        out.append(f"_{scale_note(preset)}._\n")
    for t in tables:
        spec = TABLES[t]
        out.append(f"\n## Table {t}: {spec.title} ({spec.metric})\n")
        out.append("| | " + " | ".join(spec.columns) + " |")
        out.append("|---" * (len(spec.columns) + 1) + "|")
        for row in spec.rows:
            values = []
            for column in spec.columns:
                c = next(c for c in cells if c.table == t and c.row == row and c.column == column)
                values.append(f"{mean_std(c)} / {_fmt(c.paper) or '–'}")
            out.append(f"| {row} | " + " | ".join(values) + " |")
    return "\n".join(out) + "\n"


# verdicts that are no result (one run, or a difference inside twice its standard error): their bars
# are drawn hollow and hatched, with the verdict written on them
INCONCLUSIVE = ("not testable", "within noise")


def compared(cells: Sequence[Cell]) -> list[tuple[findings.Comparison, Cell, Cell, float | None, str]]:
    """Each finding's comparison (findings.COMPARISONS) whose two rows are measured, as (comparison,
    cell A, cell B, 2 SE of the difference or None, verdict), by findings.py's rule."""
    by_key = {(c.table, c.row, c.column): c for c in cells if c.measured is not None}
    out = []
    for comp in findings.COMPARISONS:
        a, b = by_key.get((comp.table, comp.row_a, comp.column)), by_key.get((comp.table, comp.row_b, comp.column))
        if a and b:
            se = findings.pooled_standard_error(a.sample(), b.sample())
            verdict = findings.verdict(a.sample(), b.sample(), comp.claim)
            out.append((comp, a, b, None if se is None else 2 * se, verdict))
    return out


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _look(verdict, color):
    """A bar of no result is hatched and hollow, outlined in its colour."""
    return dict(facecolor="white", edgecolor=color, hatch="///") if verdict in INCONCLUSIVE else dict(facecolor=color)


def _mark_verdict(ax, x, y, verdict, a, b):
    """The verdict above (or below, for a negative bar) the bars it judges."""
    text = f"not testable\n(n={min(a.n_runs, b.n_runs)})" if verdict == "not testable" else verdict
    ax.annotate(text, (x, y), xytext=(0, 3 if y >= 0 else -3), textcoords="offset points", ha="center",
                va="bottom" if y >= 0 else "top", fontsize=6)


def _legend(ax, entries):
    from matplotlib.patches import Patch

    ax.legend(handles=[Patch(label=label, **look) for label, look in entries], fontsize=6, loc="upper left",
              bbox_to_anchor=(1.01, 1.0))


def draw_differences(cells: Sequence[Cell], preset_name: str) -> Figure | None:
    """The figure of what is comparable: each finding's difference between its rows (MAE - baseline,
    normalised - plain pixels, tokens - normalised pixels), measured (mean difference, error bar 2 SE:
    the verdict rule's interval) beside the paper's. The values themselves are not comparable (a tiny
    ViT on generated data against ImageNet, COCO and ADE20K). None when no comparison is measured."""
    plt = _pyplot()
    rows = compared(cells)
    if not rows:
        return None
    fig, ax = plt.subplots(figsize=(0.8 * len(rows) + 4.5, 4.2))
    for i, (comp, a, b, two_se, verdict) in enumerate(rows):
        key = f"Table {comp.table} {comp.column}: {comp.row_a} - {comp.row_b}"
        if comp.claim == "equal":  # "about equal" is reproduced when the whole interval lies in this band
            ax.fill_between([i - 0.45, i + 0.45], -findings.EQUIVALENCE_MARGIN, findings.EQUIVALENCE_MARGIN,
                            color="tab:green", alpha=0.15, lw=0)
        # a comparison's rows have the paper's values (numbers), and compared() keeps measured cells only
        ax.bar(i - 0.2, cast(float, a.paper) - cast(float, b.paper), 0.4, color="0.55", gid=f"paper {key}")
        assert a.measured is not None and b.measured is not None
        d = a.measured - b.measured
        ax.bar(i + 0.2, d, 0.4, **_look(verdict, "tab:blue"), gid=key)
        if two_se is not None:
            ax.errorbar(i + 0.2, d, yerr=two_se, fmt="none", ecolor="k", capsize=3, lw=0.8)
        _mark_verdict(ax, i + 0.2, d + (two_se or 0.0) if d >= 0 else d - (two_se or 0.0), verdict, a, b)
    ax.axhline(0.0, color="k", lw=0.6)
    ax.margins(y=0.15)  # room for the verdicts
    ax.set_xticks(range(len(rows)), [f"F{comp.finding}: {comp.row_a} - {comp.row_b}\nTable {comp.table}, {comp.column}"
                                     for comp, *_ in rows], rotation=35, ha="right", fontsize=6)
    ax.set_ylabel("difference between the rows (points)", fontsize=7)
    ax.tick_params(axis="y", labelsize=7)
    ax.set_title("The findings: differences between rows, measured and in the paper\n"
                 "(compare directions, not values: the paper's are ImageNet / COCO / ADE20K)", fontsize=8)
    entries = [("paper (ViT-B)", dict(facecolor="0.55")),
               (f"measured ({preset_name}): mean difference, error bar 2 SE", dict(facecolor="tab:blue")),
               ("no result: not testable / within noise", _look("not testable", "0.4"))]
    if any(comp.claim == "equal" for comp, *_ in rows):
        entries.append((f"'about equal' margin (±{findings.EQUIVALENCE_MARGIN:g})",
                        dict(facecolor="tab:green", alpha=0.15)))
    _legend(ax, entries)
    fig.tight_layout()
    return fig


def draw_mae_vs_baseline(cells: Sequence[Cell], preset_name: str) -> Figure | None:
    """MAE against the supervised / from-scratch baseline on each task (findings 1 and 2): measured
    (mean, error bar the sample std of the cell's runs) and the paper's. None when no pair is measured."""
    plt = _pyplot()
    pairs = [row for row in compared(cells) if row[0].row_a == "MAE"]
    if not pairs:
        return None
    fig, (measured, paper) = plt.subplots(1, 2, figsize=(10, 3.6))
    for i, (_comp, mae, baseline, _, verdict) in enumerate(pairs):
        assert mae.measured is not None and baseline.measured is not None, "compared() keeps measured cells"
        for dx, cell, color in ((-0.2, baseline, "tab:gray"), (0.2, mae, "tab:red")):
            measured.bar(i + dx, cell.measured, 0.4, **_look(verdict, color),
                         gid=f"Table {cell.table} {cell.column}: {cell.row}")
            if cell.std is not None:
                measured.errorbar(i + dx, cell.measured, yerr=cell.std, fmt="none", ecolor="k", capsize=2, lw=0.8)
            paper.bar(i + dx, cell.paper, 0.4, color=color)
        _mark_verdict(measured, i, max(mae.measured + (mae.std or 0.0), baseline.measured + (baseline.std or 0.0)),
                      verdict, mae, baseline)
    for ax, title in ((measured, f"measured ({preset_name} preset): mean, error bar ± std of the runs"),
                      (paper, "paper (ViT-B)")):
        ax.set_xticks(range(len(pairs)), [f"Table {comp.table}\n{comp.column}" for comp, *_ in pairs], fontsize=7)
        ax.set_title(title, fontsize=8)
        ax.tick_params(axis="y", labelsize=7)
    measured.margins(y=0.15)  # room for the verdicts
    _legend(paper, [("supervised / from scratch", dict(facecolor="tab:gray")), ("MAE", dict(facecolor="tab:red")),
                    ("no result: not testable / within noise", _look("not testable", "0.4"))])
    fig.tight_layout()
    return fig


def draw_pretrain_loss(preset: Preset) -> Figure | None:
    """The pre-training loss of each target, from the runs' log.csv; None before any has one."""
    plt = _pyplot()
    logs = [(name, os.path.join(run.out_dir, "log.csv")) for name, run in sorted(preset.runs.items())
            if name.startswith("pretrain-") and os.path.isfile(os.path.join(run.out_dir, "log.csv"))]
    if not logs:
        return None
    fig, axes = plt.subplots(1, len(logs), figsize=(3.2 * len(logs), 2.8), squeeze=False)
    for ax, (name, path) in zip(axes[0], logs):
        with open(path, newline="") as f:
            rows = list(csv.DictReader(f))
        ax.plot([int(r["epoch"]) for r in rows], [float(r["loss"]) for r in rows], marker="o", ms=2)
        ax.set_title(name, fontsize=8)
        ax.set_xlabel("epoch", fontsize=7)
        ax.tick_params(labelsize=7)
    axes[0][0].set_ylabel("loss on masked patches", fontsize=7)
    fig.tight_layout()
    return fig


def plot(cells: Sequence[Cell], preset: Preset) -> list[str]:
    """Writes the figures under results/tables/; -> their paths."""
    folder = os.path.join(preset.results, "tables")
    drawn = {"differences_vs_paper.png": draw_differences(cells, preset.name),
             "mae_vs_baseline.png": draw_mae_vs_baseline(cells, preset.name),
             "pretrain_loss.png": draw_pretrain_loss(preset)}
    paths = []
    for name, fig in drawn.items():
        if fig is not None:
            paths.append(os.path.join(folder, name))
            fig.savefig(paths[-1], dpi=110)
            _pyplot().close(fig)
    return paths


FIGURE_2_CAPTIONS = {
    "pixel": "Figure 2: the pixel-target pre-training",
    "norm_pixel": "the normalised-pixel pre-training: prediction and target each shown per-patch normalised, "
                  "as the model predicts no patch's mean or contrast",
}


def reconstructions(preset: CpuPreset) -> tuple[str, str] | None:
    """The demo's Figure 2: the last reconstruction figure of the pixel-target pre-training (the one
    the paper's Figure 2 uses too: a norm_pixel model's prediction has no colour or contrast of its
    own), or, in a preset that pre-trains normalised pixels only, the norm_pixel run's (drawn
    normalised); -> (path, caption), or None where that run drew none."""
    target = "pixel" if "pixel" in preset.scale.targets else "norm_pixel"
    figures = os.path.join(preset.out(preset.checkpoint(target, preset.sizes["B"])[1]), "figures")
    if not os.path.isdir(figures) or not os.listdir(figures):
        return None
    return os.path.join(figures, sorted(os.listdir(figures))[-1]), FIGURE_2_CAPTIONS[target]


def write_timings(preset: Preset, names: Sequence[str]) -> str:
    path = os.path.join(preset.results, "timings.csv")
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(("run", "seconds"))
        for name in names:
            with open(preset.runs[name].marker) as m:
                writer.writerow((name, m.read().strip()))
    return path


def write_script(preset: Preset, names: Sequence[str]) -> str:
    path = os.path.join(preset.results, f"{preset.name}_commands.sh")
    os.makedirs(preset.results, exist_ok=True)
    with open(path, "w") as f:
        f.write("#!/usr/bin/env bash\n# Generated by tools/reproduce.py; run in this order on every machine "
                "(each command resumes when run again).\nset -euo pipefail\n")
        for name in names:
            run = preset.runs[name]
            state = "done" if run.done else "pending"
            assert run.argv is not None, "the paper preset's runs are all tools'"
            f.write(f"\n# {name} ({state})\n{shlex.join(run.argv)}\n")
    return path


def export(cells: Sequence[Cell], preset: Preset, tables: Sequence[int]) -> None:
    """Measures the cells and writes (and names) the tables, figures and findings."""
    measure(cells, preset)
    write_tables(cells, preset, tables)
    figures = plot(cells, preset)
    tables_dir = os.path.join(preset.results, "tables")
    print(f"[reproduce] tables: {tables_dir}/table{{{','.join(map(str, tables))}}}.csv and tables.md")
    write_findings(cells, preset)
    for path in figures:
        print(f"[reproduce] plot: {path}")
    recon = reconstructions(preset) if isinstance(preset, CpuPreset) else None
    if recon:
        print(f"[reproduce] reconstructions: {recon[0]} ({recon[1]})")
    dvae_figure = os.path.join(preset.runs_dir, "dvae", "reconstructions.png")
    if os.path.isfile(dvae_figure):
        print(f"[reproduce] dVAE tokenizer reconstructions: {dvae_figure}")


def write_findings(cells: Sequence[Cell], preset: Preset) -> None:
    """The findings' verdicts from the measured cells: results/findings.{csv,md}, and a line each here."""
    samples = {(c.table, c.row, c.column): c.sample() for c in cells if c.measured is not None}
    verdicts = findings.evaluate(samples, preset.name)
    print(f"[reproduce] findings: {' and '.join(findings.write(verdicts, preset.results))}")
    for row in verdicts:
        where = (f"{findings.where(row['table'])} {row['column']}: {row['row_a']} vs {row['row_b']}"
                 if row.get("row_a") else "")
        print(f"[reproduce]     finding {row['finding']} {where}: {row['verdict']}")


# -- the ablations presets: Table 1, Figures 5 and 9 (reproduction.plan.ablation_plan's cells) --------------
TABLE1_COLUMNS = ("subtable", "entry", "paper_ft", "paper_lin", "ft", "ft_std", "ft_n", "lin", "lin_std", "lin_n",
                  "preset", "ft_run_dirs", "lin_run_dirs", "note")


def write_table1(cells: Sequence[Cell], preset: Preset) -> str:
    """results/tables/table1.csv: one row per sub-table entry (the paper's and the preset's), the
    paper's ft and lin beside the measured mean, std and run count of each."""
    by_key = {(c.row, c.column): c for c in cells if c.table == 1}
    scale = f"{preset.name} preset: tiny ViT on generated data (the paper's: ViT-L/16 on ImageNet-1K)"
    path = os.path.join(preset.results, "tables", "table1.csv")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path + ".tmp", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(TABLE1_COLUMNS)
        for sub, entry in table1_entries():
            ft, lin = by_key[f"{sub}: {entry}", "ft"], by_key[f"{sub}: {entry}", "lin"]
            measured = [value for c in (ft, lin) for value in
                        (_fmt(c.measured), _fmt(c.std), c.n_runs if c.measured is not None else "")]
            dirs = [";".join(os.path.relpath(preset.runs[run].out_dir, preset.root_dir) for run in c.runs)
                    for c in (ft, lin)]
            notes = [c.note for c in (ft, lin) if c.note]
            if not notes and (ft.measured, lin.measured) != (None, None):
                notes = [scale]
            writer.writerow([sub, entry, _fmt(ft.paper), _fmt(lin.paper), *measured, preset.name, *dirs,
                             "; ".join(dict.fromkeys(notes))])
    os.replace(path + ".tmp", path)
    return path


def _draw_measured(ax, x, cells):
    """Measured points: each cell's mean, its error bar the std of its runs (none from one run), its n."""
    ax.errorbar(x, [c.measured for c in cells], yerr=[float("nan") if c.std is None else c.std for c in cells],
                marker="o", color="tab:red", capsize=3, lw=1)
    for c, xi in zip(cells, x):
        ax.annotate(f"n={c.n_runs}", (xi, c.measured), xytext=(0, -11), textcoords="offset points", ha="center",
                    fontsize=6)


def _verdict_lines(rows, column):
    """The finding-4 verdicts on one column of Figure 5, one line each."""
    return "\n".join(f"{comp.row_a} {'>' if comp.claim == 'greater' else '≈'} {comp.row_b}: {verdict} "
                     f"(d = {a.measured - b.measured:+.1f}" + (f", 2 SE = {two_se:.1f})" if two_se is not None else ", no SE)")
                     for comp, a, b, two_se, verdict in rows if comp.table == findings.SWEEP and comp.column == column)


def draw_figure5(cells: Sequence[Cell], preset_name: str) -> Figure | None:
    """Figure 5: fine-tuning (top) and linear probing (bottom) top-1 against the mask ratio, the paper's
    ViT-L (left) beside the measured mean ± std of each point's runs (right), with the verdicts of
    finding 4 on the measured side. None when no point is measured."""
    plt = _pyplot()
    points = [c for c in cells if c.table == findings.SWEEP]
    if not any(c.measured is not None for c in points):
        return None
    verdicts = compared(cells)
    fig, axes = plt.subplots(2, 2, figsize=(10, 6.4))
    for (paper_ax, measured_ax), column, label in zip(axes, ("ft", "lin"), ("fine-tuning", "linear probing")):
        k = 0 if column == "ft" else 1
        ratios = sorted(FIGURE5)
        paper_ax.plot([100 * r for r in ratios], [FIGURE5[r][k] for r in ratios], marker="x", color="tab:blue")
        paper_ax.set_title(f"paper (ViT-L/16, ImageNet-1K): {label}", fontsize=8)
        done = [c for c in points if c.column == column and c.measured is not None]
        _draw_measured(measured_ax, [float(c.row.rstrip("%")) for c in done], done)
        measured_ax.set_title(f"measured ({preset_name}): {label}, mean ± std of the runs", fontsize=8)
        for ax, verdict_lines in ((paper_ax, ""), (measured_ax, _verdict_lines(verdicts, column))):
            ax.set_xlabel("\n".join(filter(None, ("masking ratio (%)", verdict_lines))), fontsize=7)
            ax.set_xticks(range(10, 100, 10))
            ax.tick_params(labelsize=7)
            ax.margins(y=0.2)
        paper_ax.set_ylabel("top-1 (%)", fontsize=7)
    fig.suptitle("Figure 5: masking ratio (finding 4: the verdicts by the rule of findings.md)", fontsize=9)
    fig.tight_layout()
    return fig


def draw_figure9(cells: Sequence[Cell], preset_name: str) -> Figure | None:
    """Figure 9: top-1 against the number of blocks fine-tuned (0: linear probe, all: fine-tuning), the
    paper's MAE and MoCo v3 on ViT-L's 24 blocks (left) beside the measured tiny encoder's 4 (right).
    None when no point is measured."""
    plt = _pyplot()
    done = [c for c in cells if c.table == PARTIAL and c.measured is not None]
    if not done:
        return None
    fig, (paper_ax, measured_ax) = plt.subplots(1, 2, figsize=(10, 3.4))
    for method, style in (("MAE", dict(color="tab:blue", ls="-")), ("MoCo v3", dict(color="0.3", ls="-."))):
        paper_ax.plot(list(FIGURE9[method]), list(FIGURE9[method].values()), marker="x", label=method, **style)
    paper_ax.set_xticks([0, 1, 2, 4, 6, 12, 18, 24])
    paper_ax.set_title("paper (ViT-L/16, 24 blocks, ImageNet-1K)", fontsize=8)
    paper_ax.legend(fontsize=7, loc="lower right")
    _draw_measured(measured_ax, [float(c.row) for c in done], done)
    measured_ax.set_xticks(FIGURE9_BLOCKS, [f"{b:g}" for b in FIGURE9_BLOCKS])
    measured_ax.set_title(f"measured ({preset_name}, 4 blocks): mean ± std of the runs (none where n=1)", fontsize=8)
    for ax in (paper_ax, measured_ax):
        ax.set_xlabel("# blocks fine-tuned (0: linear probing; all: full fine-tuning)", fontsize=7)
        ax.tick_params(labelsize=7)
        ax.margins(y=0.15)
    paper_ax.set_ylabel("top-1 (%)", fontsize=7)
    fig.tight_layout()
    return fig


def export_ablations(cells: Sequence[Cell], preset: Preset) -> None:
    """The ablations presets' export: measures the cells and writes table1.csv, figure5.png,
    figure9.png and the findings (finding 4's verdicts)."""
    measure(cells, preset)
    print(f"[reproduce] Table 1: {write_table1(cells, preset)}")
    for name, draw in (("figure5.png", draw_figure5), ("figure9.png", draw_figure9)):
        fig = draw(cells, preset.name)
        if fig is not None:
            path = os.path.join(preset.results, "tables", name)
            fig.savefig(path, dpi=110)
            _pyplot().close(fig)
            print(f"[reproduce] plot: {path}")
    write_findings(cells, preset)


# -- a preset's results in a benchmarks document (tools/reproduce.py --record FILE) -------------------------
def record(path: str, preset: Preset, names: Sequence[str], tables: Sequence[int]) -> str:
    """Writes the run's tables, verdicts and times into FILE's section for this preset, between marker
    lines (an earlier section for it is replaced; none: appended). Wall time: from the first run's start
    to the last run's end (each done marker holds its run's seconds and was written at its end)."""
    ends, seconds = [], []
    for name in names:
        marker = preset.runs[name].marker
        with open(marker) as f:
            seconds.append(float(f.read()))
        ends.append(os.path.getmtime(marker))
    wall = max(ends) - min(end - s for end, s in zip(ends, seconds))
    machine = f"{os.cpu_count()} CPU cores, torch {torch.__version__}"
    if torch.cuda.is_available():
        machine = f"{torch.cuda.get_device_name()}, {machine}"
    slowest = sorted(zip(seconds, names), reverse=True)[:5]
    begin, end = f"<!-- tools/reproduce.py --preset {preset.name}: begin -->", f"<!-- tools/reproduce.py --preset {preset.name}: end -->"
    # the documents' headings two levels down, under this section's
    with open(os.path.join(preset.results, "tables", "tables.md")) as f:
        tables_md = "### " + f.read().strip().removeprefix("# ").replace("\n## ", "\n#### ")
    with open(os.path.join(preset.results, "findings.md")) as f:
        findings_md = "#### " + f.read().strip().split("\n## ", 1)[-1].replace("\n## ", "\n#### ")
    section = "\n".join([
        begin, f"## `tools/reproduce.py --preset {preset.name}`: {machine}, {time.strftime('%Y-%m-%d')}", "",
        f"{len(names)} runs (tables {','.join(map(str, tables))}): {wall:.0f} s from the first run's start to the "
        f"last one's end, {sum(seconds):.0f} s of run time in all; the longest: "
        + ", ".join(f"{name} {s:.0f} s" for s, name in slowest) + " (all: results/timings.csv).",
        "", tables_md, "", "### Findings", "", findings_md, end])
    text = ""
    if os.path.isfile(path):
        with open(path) as f:
            text = f.read()
    if begin in text and end in text:
        text = text[:text.index(begin)] + section + text[text.index(end) + len(end):]
    else:
        text = text.rstrip("\n") + ("\n\n" if text else "") + section + "\n"
    with open(path, "w") as f:
        f.write(text)
    return path
