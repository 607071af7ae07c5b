"""Per-run result rows: the one schema of the results CSVs that the transfer tools write and the
reproduction reads back.

Each evaluation appends one row to a results CSV (by default RUN_DIR/results.csv; a sweep or the
reproduction passes a shared file). A row holds the columns of its kind, in this order, then
`run_dir`, the run's absolute folder, by which a reader finds the run's row again (the last one wins
when a run was evaluated more than once). Floats are written with three decimals.
"""
from __future__ import annotations

import csv
import fcntl
import os

# kind -> the columns of its rows, before run_dir (the same names and order the tools always wrote)
COLUMNS = {
    "cls": ("pretrain_checkpoint", "backbone", "dataset", "mode", "blocks", "resolution", "top1", "top5", "epoch"),
    "det": ("pretrain_checkpoint", "backbone", "adapter", "ap_box", "ap_mask", "iteration", "checkpoint"),
    "seg": ("pretrain_checkpoint", "backbone", "mIoU", "mAcc", "aAcc", "iteration", "checkpoint"),
}


def fields(kind: str) -> tuple:
    """The header of a `kind` results CSV."""
    if kind not in COLUMNS:
        raise ValueError(f"unknown result kind {kind!r}: one of {', '.join(COLUMNS)}")
    return (*COLUMNS[kind], "run_dir")


def default_path(run_dir: str) -> str:
    return os.path.join(os.path.abspath(run_dir), "results.csv")


def _cell(value):
    return f"{value:.3f}" if isinstance(value, float) else value


def record_result(kind: str, run_dir: str, path: str | None = None, **metrics: object) -> tuple[str, dict]:
    """Appends one `kind` row for run_dir to path (default RUN_DIR/results.csv; the header comes with
    the first row). metrics: exactly the columns of the kind (COLUMNS[kind]). -> (path, the row)."""
    columns = fields(kind)[:-1]
    unknown, missing = sorted(set(metrics) - set(columns)), [c for c in columns if c not in metrics]
    if unknown or missing:
        raise ValueError(f"a {kind} result row has the columns {', '.join(columns)}"
                         + (f"; unknown: {', '.join(unknown)}" if unknown else "")
                         + (f"; missing: {', '.join(missing)}" if missing else ""))
    run_dir = os.path.abspath(run_dir)
    path = path or default_path(run_dir)
    row = {c: _cell(metrics[c]) for c in columns}
    row["run_dir"] = run_dir
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "a", newline="") as f:
        fcntl.flock(f, fcntl.LOCK_EX)  # runs in parallel (reproduce --jobs) share one file: one header, whole rows
        writer = csv.DictWriter(f, list(row))
        if os.fstat(f.fileno()).st_size == 0:
            writer.writeheader()
        writer.writerow(row)
    return path, row


def read_result(kind: str, run_dir: str, path: str | None = None) -> dict | None:
    """The last `kind` row recorded for run_dir in path (default RUN_DIR/results.csv), or None."""
    fields(kind)  # a known kind
    run_dir = os.path.abspath(run_dir)
    path = path or default_path(run_dir)
    if not os.path.isfile(path):
        return None
    with open(path, newline="") as f:
        rows = [r for r in csv.DictReader(f) if r.get("run_dir") == run_dir]
    return rows[-1] if rows else None
