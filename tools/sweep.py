#!/usr/bin/env python
"""A grid search over config overrides (the paper's per-entry lr search): launches each run of the grid
in turn, resumes the unfinished ones when run again, and tabulates them in OUT/summary.csv.

  python tools/sweep.py --cfg seg/upernet_vit_l.py --out runs/sweep/seg_l \
      optim_wrapper.optimizer.lr=5e-5,1e-4,2e-4 optim_wrapper.paramwise_cfg.layer_decay=0.75,0.85,0.95 \
      -- --init mae_pretrain_vit_large.pth --data-root /data/ade/ADEChallengeData2016
  python tools/sweep.py --cfg cls/finetune_vit_l.py --out runs/sweep/ft_l blr=5e-4,1e-3 \
      --launcher "torchrun --nproc_per_node 8" -- --init mae_pretrain_vit_large.pth --data-root /data/imagenet
  python tools/sweep.py --cfg det/mask_rcnn_vit_b.py --out runs/sweep/det_b optimizer.lr=1e-4,2e-4 -- --num-gpus 8
  python tools/sweep.py --cfg seg/upernet_vit_l.py --out runs/sweep/seg_l --table-only ...   # tabulate only

The tool (train_cls, train_det, train_seg or pretrain) is the config's folder under configs/ (cls, det,
seg, pretrain) unless --tool names it. KEY=V1,V2,... is one axis of the grid (commas inside brackets
belong to the value); KEY=V (one value) applies to every run. Arguments after `--` go to every run.
Each run has its folder OUT/<key=value,...> (the grid's keys only); a run whose command exited 0 is
marked done (SWEEP_DONE in its folder) and skipped from then on; every other run is launched with the
`--resume auto`, which continues from the run's last checkpoint when it has one.
"""
import argparse
import csv
import itertools
import os
import re
import shlex
import subprocess
import sys

from common.project import ROOT, TOOLS, tool_path

SWEPT = ("cls", "det", "seg", "pretrain")  # the tools with a config to sweep over (the dVAE takes flags)
DONE = "SWEEP_DONE"


def split_values(raw):
    """'1e-4,2e-4' -> ['1e-4', '2e-4']; commas inside (), [] or {} stay in their value."""
    values, depth, start = [], 0, 0
    for i, ch in enumerate(raw):
        depth += ch in "([{"
        depth -= ch in ")]}"
        if ch == "," and depth == 0:
            values.append(raw[start:i])
            start = i + 1
    values.append(raw[start:])
    return values


def parse_grid(items, parser):
    """[(key, [values])] in the order given."""
    grid = []
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or not key or not raw:
            parser.error(f"grid argument {item!r} is not KEY=V1,V2,...")
        grid.append((key, split_values(raw)))
    return grid


def infer_tool(cfg, parser):
    parts = os.path.normpath(cfg).split(os.sep)
    folders = [p for p in parts[:-1] if p in SWEPT]
    if not folders:
        parser.error(f"cannot tell the tool from {cfg!r} (not under configs/cls, det, seg or pretrain): pass --tool")
    return folders[-1]


def run_name(assignment):
    name = ",".join(f"{key}={value}" for key, value in assignment)
    return re.sub(r"[^A-Za-z0-9._=,+-]", "_", name) or "run"


def command(tool, cfg, run_dir, results_csv, overrides, extra, launcher):
    """The tool's command line for one run, resuming its last checkpoint (a fresh run resumes nothing);
    every tool takes the same options (common/cli.training_parser)."""
    args = [tool_path(TOOLS[tool].script), "--cfg", cfg, "--output-dir", run_dir, "--resume", "auto"]
    if TOOLS[tool].results_csv:
        args += ["--results-csv", results_csv]
    return [*launcher, *args, *overrides, *extra]


def last_rows(path):
    """The last result row of each run_dir in a results CSV."""
    if not os.path.isfile(path):
        return {}
    with open(path) as f:
        return {row["run_dir"]: row for row in csv.DictReader(f)}


def pretrain_row(run_dir):
    path = os.path.join(run_dir, "log.csv")
    if not os.path.isfile(path):
        return {}
    with open(path) as f:
        rows = list(csv.DictReader(f))
    return rows[-1] if rows else {}


def tabulate(tool, grid_keys, runs, out):
    """Writes OUT/summary.csv (one row per run: grid values, status, metrics) and returns its rows."""
    results = last_rows(os.path.join(out, "results.csv"))
    rows = []
    for assignment, run_dir in runs:
        status = "done" if os.path.isfile(os.path.join(run_dir, DONE)) else (
            "unfinished" if os.path.isdir(run_dir) else "not started")
        found = pretrain_row(run_dir) if tool == "pretrain" else results.get(os.path.abspath(run_dir), {})
        row = dict(assignment)
        row.update(status=status, **{m: found.get(m, "") for m in TOOLS[tool].metrics}, run_dir=run_dir)
        rows.append(row)
    fields = [*grid_keys, "status", *TOOLS[tool].metrics, "run_dir"]
    with open(os.path.join(out, "summary.csv"), "w", newline="") as f:
        writer = csv.DictWriter(f, fields)
        writer.writeheader()
        writer.writerows(rows)
    widths = {k: max(len(k), *(len(str(r[k])) for r in rows)) for k in fields[:-1]}
    print("  ".join(k.ljust(widths[k]) for k in fields[:-1]))
    for r in rows:
        print("  ".join(str(r[k]).ljust(widths[k]) for k in fields[:-1]))
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cfg", required=True, help="config (path or name under configs/)")
    parser.add_argument("--out", required=True, help="sweep folder: one folder per run, results.csv, summary.csv")
    parser.add_argument("--tool", choices=SWEPT, help="default: the config's folder under configs/")
    parser.add_argument("--launcher", default=sys.executable,
                        help="command that runs a tool script (default: this Python; e.g. 'torchrun --nproc_per_node 8')")
    parser.add_argument("--table-only", action="store_true", help="tabulate the runs, launch nothing")
    parser.add_argument("grid", nargs="*", help="KEY=V1,V2,... (an axis) or KEY=V (every run)")
    argv = sys.argv[1:] if argv is None else list(argv)
    extra = []
    if "--" in argv:
        split = argv.index("--")
        argv, extra = argv[:split], argv[split + 1:]
    args = parser.parse_args(argv)
    tool = args.tool or infer_tool(args.cfg, parser)
    grid = parse_grid(args.grid, parser)
    axes = [(k, v) for k, v in grid if len(v) > 1]
    fixed = [f"{k}={v[0]}" for k, v in grid if len(v) == 1]
    os.makedirs(args.out, exist_ok=True)
    results_csv = os.path.abspath(os.path.join(args.out, "results.csv"))
    runs = []
    for values in itertools.product(*(v for _, v in axes)):
        assignment = list(zip((k for k, _ in axes), values))
        runs.append((assignment, os.path.join(args.out, run_name(assignment))))
    failed = []
    for assignment, run_dir in runs if not args.table_only else ():
        if os.path.isfile(os.path.join(run_dir, DONE)):
            print(f"[sweep] {run_dir}: done, skipped")
            continue
        overrides = fixed + [f"{k}={v}" for k, v in assignment]
        cmd = command(tool, args.cfg, run_dir, results_csv, overrides, extra, shlex.split(args.launcher))
        print(f"[sweep] {run_dir}: {shlex.join(cmd)}", flush=True)
        os.makedirs(run_dir, exist_ok=True)
        if subprocess.run(cmd, cwd=ROOT).returncode == 0:
            open(os.path.join(run_dir, DONE), "w").close()
        else:
            failed.append(run_dir)
            print(f"[sweep] {run_dir}: failed; the next sweep resumes it", flush=True)
    tabulate(tool, [k for k, _ in axes], runs, args.out)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
