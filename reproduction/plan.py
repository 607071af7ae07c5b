"""From the paper's table cells to the runs behind them: every cell of Tables 3-7 names its runs
(one per seed; recipes.py builds them), and ordered() puts dependencies first."""
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from . import findings
from .paper_tables import FIGURE5, OTHER_METHODS, TABLE1, TABLES
from .recipes import TABLE6_DATASETS, Preset, Unavailable

TARGETS = {"pixel (w/o norm)": "pixel", "pixel (w/ norm)": "norm_pixel", "dVAE token": "dvae_token"}
TABLE7_TASKS = {"IN1K": ("cls-imagenet", "top1"), "COCO": ("det", "ap_box"), "ADE20K": ("seg", "mIoU")}


@dataclass
class Cell:
    table: int | str  # a table's number, or findings.SWEEP / PARTIAL
    row: str
    column: str
    paper: object
    runs: tuple = ()  # the runs (one per seed) whose records hold the values
    metric: str = ""
    note: str = ""
    measured: float | None = None  # the mean over the finished runs
    std: float | None = None  # their sample standard deviation (n - 1), with two runs or more
    n_runs: int = 0

    def sample(self) -> findings.Sample:
        assert self.measured is not None, "only a measured cell has a sample"
        return findings.Sample(self.measured, float("nan") if self.std is None else self.std, self.n_runs)


def cell_source(table: int | str, row: str, column: str, preset: Preset) -> tuple[tuple[str, ...], str]:
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


def plan(preset: Preset, tables: Iterable[int]) -> list[Cell]:
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


# The ablations presets (AblationPreset): each Table 1 entry -> the pre-training of the same setting (a
# SOURCE of recipes.py's grammar: TARGET[-SETTING...]), one run-set per source. DEFAULT, the tiny
# recipe's (configs/pretrain/mae_vit_tiny_cpu.py: normalised pixels, 75% random masking, decoder 2
# blocks x 128, no mask token in the encoder, random-size crops), is one pre-training shared by every
# sub-table and Figures 5 and 9. Sub-tables (a) and (b) name the decoder's blocks and width, so the
# tiny default is the paper's entry "2" / "128" (the paper's default: 8 / 512); "64" is no entry of
# the paper's. Entries without a source are not run (the budget: README, "The ablations preset").
DEFAULT = "norm_pixel"
TABLE1_SOURCES = {
    "(a) decoder depth": {"1": "norm_pixel-dec1", "2": DEFAULT},
    "(b) decoder width": {"64": "norm_pixel-dim64", "128": DEFAULT},
    "(c) mask token": {"encoder w/ [M]": "norm_pixel-enctoken", "encoder w/o [M]": DEFAULT},
    "(d) reconstruction target": {"pixel (w/o norm)": "pixel", "pixel (w/ norm)": DEFAULT},
    "(e) data augmentation": {"none": "norm_pixel-aug_none", "crop, rand size": DEFAULT},
    "(f) mask sampling": {"random 75": DEFAULT, "grid 75": "norm_pixel-grid"},
}
FIGURE5_RATIOS = (0.1, 0.3, 0.5, 0.75, 0.9)  # of the paper's ten; the lower, the more the encoder sees (and costs)
FIGURE9_BLOCKS = (0, 0.5, 1, 2, 3, 4)  # of the tiny encoder's 4; 0 is the linear probe, 4 fine-tuning
PARTIAL = "Figure 9"  # the "table" of the partial fine-tuning cells
PROTOCOL_COLUMNS = {"ft": "", "lin": "-lin"}  # a cell's column -> its runs' PROTOCOL suffix


def table1_entries() -> Iterator[tuple[str, str]]:
    """(sub-table, entry) in the paper's order, each sub-table's entries that the paper lacks first."""
    for sub, paper in TABLE1.items():
        for entry in [e for e in TABLE1_SOURCES[sub] if e not in paper] + list(paper):
            yield sub, entry


def figure5_row(ratio: float) -> str:
    return f"{ratio:.0%}"


def ablation_plan(preset: Preset) -> list[Cell]:
    """The cells of Table 1 (row "SUB-TABLE: ENTRY"), Figure 5 (row "75%") and Figure 9 (row: blocks
    tuned), each with its runs: ft / lin columns, the first n seeds of the lin / ft / partial runs."""
    size = preset.sizes["B"]

    def runs(source: str, suffix: str, transfer: str) -> tuple[str, ...]:
        return tuple(f"cls-imagenet-{size}-{source}{suffix}-seed{seed}" for seed in preset.seeds(transfer))

    cells = []
    for sub, entry in table1_entries():
        source, paper = TABLE1_SOURCES[sub].get(entry), TABLE1[sub].get(entry, (None, None))
        for column, value in zip(PROTOCOL_COLUMNS, paper):
            cell = Cell(1, f"{sub}: {entry}", column, value, metric="top1")
            if source is None:
                cell.note = "not run by this preset"
            else:
                cell.runs = runs(source, PROTOCOL_COLUMNS[column], column)
                cell.note = "" if value is not None else "no such entry in the paper"
            cells.append(cell)
    for ratio in FIGURE5_RATIOS:
        source = DEFAULT if ratio == 0.75 else f"{DEFAULT}-mask{ratio}"
        for column, value in zip(PROTOCOL_COLUMNS, FIGURE5[ratio]):
            cells.append(Cell(findings.SWEEP, figure5_row(ratio), column, value,
                              runs(source, PROTOCOL_COLUMNS[column], column), "top1"))
    for blocks in FIGURE9_BLOCKS:  # the paper's points are of a 24-block ViT-L: no value at the same x
        suffix = {0.0: "-lin", 4.0: ""}.get(blocks, f"-partial{blocks:g}")
        cells.append(Cell(PARTIAL, f"{blocks:g}", "partial", None, runs(DEFAULT, suffix, "partial"), "top1"))
    for cell in cells:
        for run in cell.runs:
            preset.get(run)
    return cells


def ordered(preset: Preset, names: Iterable[str]) -> list[str]:
    """Dependencies first, each run once."""
    order, seen = [], set()

    def visit(name: str) -> None:
        if name not in seen:
            seen.add(name)
            for dep in preset.runs[name].deps:
                visit(dep)
            order.append(name)

    for name in names:
        visit(name)
    return order
