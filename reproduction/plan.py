"""From the paper's table cells to the runs behind them: every cell of Tables 3-7 names its runs
(one per seed; recipes.py builds them), and ordered() puts dependencies first."""
from dataclasses import dataclass

from . import findings
from .paper_tables import OTHER_METHODS, TABLES
from .recipes import TABLE6_DATASETS, Unavailable

TARGETS = {"pixel (w/o norm)": "pixel", "pixel (w/ norm)": "norm_pixel", "dVAE token": "dvae_token"}
TABLE7_TASKS = {"IN1K": ("cls-imagenet", "top1"), "COCO": ("det", "ap_box"), "ADE20K": ("seg", "mIoU")}


@dataclass
class Cell:
    table: int
    row: str
    column: str
    paper: object
    runs: tuple = ()  # the runs (one per seed) whose records hold the values
    metric: str = ""
    note: str = ""
    measured: object = None  # the mean over the finished runs
    std: object = None  # their sample standard deviation (n - 1), with two runs or more
    n_runs: int = 0

    def sample(self):
        return findings.Sample(self.measured, float("nan") if self.std is None else self.std, self.n_runs)


def cell_source(table, row, column, preset):
    """(run names, one per seed; metric) behind one cell; raises Unavailable with the reason when there is none."""
    if row in OTHER_METHODS:
        raise Unavailable(f"{row} is another method's published result; this toolkit trains MAE and the supervised baseline")
    if table == 3:
        source = "scratch" if row.startswith("scratch") else "norm_pixel"
        run, transfer, metric = f"cls-imagenet-{preset.size(column)}-{source}", "in1k", "top1"
    elif table == 4:
        ap, size_col = column.split(" ", 1)
        source = "supervised" if row == "supervised" else "norm_pixel"
        run, transfer, metric = f"det-{preset.size(size_col)}-{source}", "det", {"APbox": "ap_box", "APmask": "ap_mask"}[ap]
    elif table == 5:
        source = "supervised" if row == "supervised" else "norm_pixel"
        run, transfer, metric = f"seg-{preset.size(column)}-{source}", "seg", "mIoU"
    elif table == 6:
        if column == "prev best":
            raise Unavailable("the best previously published result, not a run")
        run, transfer, metric = f"cls-{TABLE6_DATASETS[row]}-{preset.size(column)}-norm_pixel", "table6", "top1"
    else:
        task, size_col = column.split(" ", 1)
        kind, metric = TABLE7_TASKS[task]
        run, transfer = f"{kind}-{preset.size(size_col)}-{TARGETS[row]}", {"cls-imagenet": "in1k"}.get(kind, kind)
    return tuple(f"{run}-seed{seed}" for seed in preset.seeds(transfer)), metric


def plan(preset, tables):
    cells = []
    for t in tables:
        spec = TABLES[t]
        for row, values in spec.rows.items():
            for column, paper in zip(spec.columns, values):
                cell = Cell(t, row, column, paper)
                cells.append(cell)
                if t == 7 and row == "difference":
                    cell.note = "computed: dVAE token - pixel (w/ norm), from the measured rows"
                    continue
                if paper is None:
                    cell.note = "no value in the paper"
                    continue
                try:
                    cell.runs, cell.metric = cell_source(t, row, column, preset)
                    for run in cell.runs:
                        preset.get(run)
                except Unavailable as e:
                    cell.runs, cell.note = (), str(e)
    return cells


def ordered(preset, names):
    """Dependencies first, each run once."""
    order, seen = [], set()

    def visit(name):
        if name not in seen:
            seen.add(name)
            for dep in preset.runs[name].deps:
                visit(dep)
            order.append(name)

    for name in names:
        visit(name)
    return order
