"""The tables, figures and findings of a reproduction, from the runs' result rows: each cell the mean
(± sample std) over its seeds' runs, written to results/tables/ (tableN.csv, tables.md, *.png),
results/findings.{csv,md} and results/timings.csv; the paper preset's command script."""
import csv
import os
import shlex
import statistics

from . import findings
from .paper_tables import TABLES
from .recipes import CpuPreset
from .run import last_record

# measured_value is the mean over the cell's seeds; the two added columns come last so that readers
# of the original eight columns keep working
COLUMNS = ("table", "row", "column", "paper_value", "measured_value", "preset", "run_dir", "note",
           "measured_std", "n_runs")


def measure(cells, preset):
    # one read per run: several cells (box and mask AP, Table 3's MAE and Table 7's norm-pixel) share runs
    records = {name: last_record(run) if run.done else None for name, run in preset.runs.items()}
    for cell in cells:
        if not cell.runs:
            continue
        values = [float(records[run][cell.metric]) for run in cell.runs if records[run] is not None]
        if len(values) < len(cell.runs):
            cell.note = cell.note or f"{len(cell.runs) - len(values)} of {len(cell.runs)} runs not finished"
        if values:
            cell.measured, cell.n_runs = statistics.fmean(values), len(values)
            cell.std = statistics.stdev(values) if len(values) > 1 else None
    for cell in cells:  # Table 7's last row: the measured difference, where both rows are measured
        if cell.table == 7 and cell.row == "difference":
            pair = {c.row: c for c in cells if c.table == 7 and c.column == cell.column}
            token, norm = pair.get("dVAE token"), pair.get("pixel (w/ norm)")
            if token is None or norm is None or None in (token.measured, norm.measured):
                cell.note += "; a row is not measured under this preset"
            else:
                cell.measured, cell.n_runs = token.measured - norm.measured, min(token.n_runs, norm.n_runs)
                # the spread of one run's difference: the rows' runs are independent, so variances add
                if None not in (token.std, norm.std):
                    cell.std = (token.std ** 2 + norm.std ** 2) ** 0.5


def scale_note(preset):
    if isinstance(preset, CpuPreset):
        s = preset.scale
        return (f"{preset.name} preset: the ViT-B column holds a ViT-Tiny-width, 4-block, 8 px-patch ViT at "
                f"64 px, pre-trained {s.pretrain_epochs} epochs on {s.pretrain_images} generated images, and the "
                f"transfer data are generated too: compare rows with each other, not values with the paper's")
    return ""


def write_tables(cells, preset, tables):
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


def mean_std(cell):
    """'mean ± std (n=N)', 'value (n=1)' or '–'."""
    if cell.measured is None:
        return "–"
    spread = f" ± {_fmt(cell.std)}" if cell.std is not None else ""
    return f"{_fmt(cell.measured)}{spread} (n={cell.n_runs})"


def markdown(cells, preset, tables):
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


def plot(cells, preset, tables):
    """paper_vs_measured.png: each measured cell (mean, ± std as an error bar) beside the paper's value,
    one panel per table; mae_vs_baseline.png: MAE against the supervised / from-scratch baseline on each task;
    pretrain_loss.png: the pre-training loss of each target."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    folder = os.path.join(preset.results, "tables")
    measured = [c for c in cells if c.measured is not None and c.paper is not None and c.row != "difference"]
    panels = [t for t in tables if any(c.table == t for c in measured)]
    paths = []
    if panels:
        widths = [sum(c.table == t for c in measured) + 1 for t in panels]
        fig, axes = plt.subplots(1, len(panels), figsize=(0.5 * sum(widths) + 1.5, 3.8), squeeze=False,
                                 gridspec_kw=dict(width_ratios=widths))
        for ax, t in zip(axes[0], panels):
            group = [c for c in measured if c.table == t]
            x = range(len(group))
            ax.bar([i - 0.2 for i in x], [c.paper for c in group], 0.4, color="0.75", label="paper")
            ax.bar([i + 0.2 for i in x], [c.measured for c in group], 0.4, yerr=[c.std or 0.0 for c in group], capsize=2,
                   color="tab:blue", label=f"measured ({preset.name}, mean ± std)")
            ax.set_xticks(list(x), [f"{c.row}\n{c.column}" for c in group], rotation=60, ha="right", fontsize=6)
            ax.set_title(f"Table {t}", fontsize=9)
            ax.tick_params(axis="y", labelsize=7)
        axes[0][0].legend(fontsize=7)
        fig.tight_layout()
        paths.append(os.path.join(folder, "paper_vs_measured.png"))
        fig.savefig(paths[-1], dpi=110)
        plt.close(fig)

    tasks = [(3, "ImageNet top-1", "scratch, our impl.", "ViT-B"), (4, "COCO APbox", "supervised", "APbox ViT-B"),
             (4, "COCO APmask", "supervised", "APmask ViT-B"), (5, "ADE20K mIoU", "supervised", "ViT-B")]
    pairs = []
    for t, label, baseline, column in tasks:
        by_row = {c.row: c for c in cells if c.table == t and c.column == column}
        if by_row.get("MAE") and by_row.get(baseline) and None not in (by_row["MAE"].measured, by_row[baseline].measured):
            pairs.append((label, by_row[baseline], by_row["MAE"]))
    if pairs:
        fig, axes = plt.subplots(1, 2, figsize=(8, 3.4))
        for ax, attr, title in ((axes[0], "measured", f"measured ({preset.name} preset, mean ± std)"),
                                (axes[1], "paper", "paper (ViT-B)")):
            x = range(len(pairs))
            # the paper's single values have no error bar; the measured ones show their seeds' spread
            spread = (lambda c: c.std or 0.0) if attr == "measured" else (lambda c: 0.0)
            ax.bar([i - 0.2 for i in x], [getattr(b, attr) for _, b, _ in pairs], 0.4,
                   yerr=[spread(b) for _, b, _ in pairs], capsize=2, color="tab:gray", label="supervised / from scratch")
            ax.bar([i + 0.2 for i in x], [getattr(m, attr) for _, _, m in pairs], 0.4,
                   yerr=[spread(m) for _, _, m in pairs], capsize=2, color="tab:red", label="MAE")
            ax.set_xticks(list(x), [label for label, _, _ in pairs], fontsize=7)
            ax.set_title(title, fontsize=9)
        axes[0].legend(fontsize=7)
        fig.tight_layout()
        paths.append(os.path.join(folder, "mae_vs_baseline.png"))
        fig.savefig(paths[-1], dpi=110)
        plt.close(fig)
    logs = [(name, os.path.join(run.out_dir, "log.csv")) for name, run in sorted(preset.runs.items())
            if name.startswith("pretrain-") and os.path.isfile(os.path.join(run.out_dir, "log.csv"))]
    if logs:
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
        paths.append(os.path.join(folder, "pretrain_loss.png"))
        fig.savefig(paths[-1], dpi=110)
        plt.close(fig)
    return paths


def write_timings(preset, names):
    path = os.path.join(preset.results, "timings.csv")
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(("run", "seconds"))
        for name in names:
            with open(preset.runs[name].marker) as m:
                writer.writerow((name, m.read().strip()))
    return path


def write_script(preset, names):
    path = os.path.join(preset.results, f"{preset.name}_commands.sh")
    os.makedirs(preset.results, exist_ok=True)
    with open(path, "w") as f:
        f.write("#!/usr/bin/env bash\n# Generated by tools/reproduce.py; run in this order on every machine "
                "(each command resumes when run again).\nset -euo pipefail\n")
        for name in names:
            run = preset.runs[name]
            state = "done" if run.done else "pending"
            f.write(f"\n# {name} ({state})\n{shlex.join(run.argv)}\n")
    return path


def export(cells, preset, tables):
    """Measures the cells and writes (and names) the tables, figures and findings."""
    measure(cells, preset)
    write_tables(cells, preset, tables)
    figures = plot(cells, preset, tables)
    tables_dir = os.path.join(preset.results, "tables")
    print(f"[reproduce] tables: {tables_dir}/table{{{','.join(map(str, tables))}}}.csv and tables.md")
    samples = {(c.table, c.row, c.column): c.sample() for c in cells if c.measured is not None}
    verdicts = findings.evaluate(samples, preset.name)
    print(f"[reproduce] findings: {' and '.join(findings.write(verdicts, preset.results))}")
    for row in verdicts:
        where = f"Table {row['table']} {row['column']}: {row['row_a']} vs {row['row_b']}" if row.get("row_a") else ""
        print(f"[reproduce]     finding {row['finding']} {where}: {row['verdict']}")
    for path in figures:
        print(f"[reproduce] plot: {path}")
    # the pre-training the Table 3 MAE row starts from (its run name from the recipes)
    recon = os.path.join(preset.out(preset.checkpoint("norm_pixel", preset.sizes["B"])[1]), "figures")
    if isinstance(preset, CpuPreset) and os.path.isdir(recon) and os.listdir(recon):
        print(f"[reproduce] reconstructions: {os.path.join(recon, sorted(os.listdir(recon))[-1])}")
    dvae_figure = os.path.join(preset.runs_dir, "dvae", "reconstructions.png")
    if os.path.isfile(dvae_figure):
        print(f"[reproduce] dVAE tokenizer reconstructions: {dvae_figure}")
