#!/usr/bin/env python
"""Reproduces the paper's Tables 3-7 as one dependency graph of runs, then exports the tables.

  python tools/reproduce.py --preset tiny --out demo_output          # `make demo`: all on this CPU
  python tools/reproduce.py --preset paper --data-root /data --dalle-encoder encoder.pkl \
      --nproc-per-node 8 --nnodes 4 --node-rank $RANK --master-addr $HEAD            # writes the commands
  ... --preset paper ... --launch                                    # runs them (every node, same command)

The graph: generated data (tiny/smoke) -> the dVAE tokenizer -> MAE pre-training per target
(pixel, normalised pixel, dVAE token) -> every transfer run that uses them (ImageNet fine-tuning,
iNaturalist/Places fine-tuning, Mask R-CNN on COCO, UperNet on ADE20K) and the supervised
from-scratch baseline with the transfers that start from it. Each run is the project's own tool
(tools/pretrain.py, train_cls.py, train_det.py, train_seg.py, train_dvae.py) in a subprocess with
its resume flag on: a finished run (OUT/runs/PRESET/NAME/reproduce.done) is skipped, an interrupted
one continues from its last checkpoint.

Every transfer run is repeated for the first n of the fixed SEEDS (n per transfer kind and preset;
runs named NAME-seedS); a cell is the mean over its seeds. Outputs under OUT/results/:
runs/{cls,det,seg}.csv (the tools' per-run records), tables/table3.csv .. table7.csv (columns
table,row,column,paper_value,measured_value,preset,run_dir,note,measured_std,n_runs), tables/tables.md
(mean ± std), tables/*.png, findings.csv and findings.md (the paper's findings with a verdict each,
tools/findings.py) and timings.csv. Presets: tiny (generated data, a tiny ViT, the ViT-B column of
every table at small scale, at most 30 minutes on 2 CPU cores), small (20x more unlabelled than
labelled images and longer pre-training, at most 90 minutes), smoke (the same graph for a few
iterations: a pipeline check, its numbers mean nothing), paper (the real datasets and recipes, ViT-B/L/H).
"""
import argparse
import csv
import os
import re
import shlex
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass

import _bootstrap
import findings
from paper_tables import OTHER_METHODS, TABLES

# measured_value is the mean over the cell's seeds; the two added columns come last so that readers
# of the original eight columns keep working
COLUMNS = ("table", "row", "column", "paper_value", "measured_value", "preset", "run_dir", "note",
           "measured_std", "n_runs")
TARGETS = {"pixel (w/o norm)": "pixel", "pixel (w/ norm)": "norm_pixel", "dVAE token": "dvae_token"}
TABLE6_DATASETS = {"iNat 2017": "inat2017", "iNat 2018": "inat2018", "iNat 2019": "inat2019",
                   "Places205": "places205", "Places365": "places365"}
TABLE7_TASKS = {"IN1K": ("cls-imagenet", "top1"), "COCO": ("det", "ap_box"), "ADE20K": ("seg", "mIoU")}
SIZE_OF_COLUMN = {"ViT-B": "B", "ViT-L": "L", "ViT-H": "H", "ViT-H448": "H448"}


class Unavailable(Exception):
    """A cell this preset cannot produce; the message becomes the cell's note."""


@dataclass
class Run:
    argv: list = None  # a tool's command line, or
    func: object = None  # an in-process step (generating the toy data)
    deps: tuple = ()  # names of the runs it needs
    results_csv: str = ""  # transfer runs: the CSV their result row lands in
    name: str = ""  # set by Preset.get
    out_dir: str = ""
    seconds: float = 0.0

    @property
    def marker(self):
        return os.path.join(self.out_dir, "reproduce.done")

    @property
    def done(self):
        return os.path.isfile(self.marker)


# -- presets -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Scale:
    """How big each step of the CPU presets is."""
    pretrain_images: int
    pretrain_epochs: int
    dvae_epochs: int
    in1k_images: tuple  # (train, val) for the ImageNet-layout fine-tuning of Tables 3 and 7
    cls_images: tuple  # (train, val) for each Table 6 dataset
    cls_epochs: int
    scratch_epochs: int
    coco_images: tuple
    det_iters: int
    ade_images: tuple
    seg_iters: int
    # transfer kind ("in1k": Tables 3 and 7's classification, "table6", "det", "seg") -> how many of
    # SEEDS each of its cells runs; one pre-training per target (seed 0) feeds every seed
    runs_per_cell: dict


# Fixed before any result was seen and the same for every row of a table: a cell with n runs uses
# the first n, so a comparison never pairs different seeds.
SEEDS = (0, 1, 2, 3, 4)

SCALES = {
    # 30 min on 2 cores: 3 seeds where a run costs under a minute (the classification of Tables 3
    # and 7, whose cells findings 1 and 3 compare); Table 6 (no finding), Mask R-CNN (~90 s a run)
    # and UperNet keep one seed each, which leaves their findings "not testable" at this scale.
    "tiny": Scale(pretrain_images=1024, pretrain_epochs=30, dvae_epochs=8, in1k_images=(400, 250),
                  cls_images=(200, 100), cls_epochs=8, scratch_epochs=16, coco_images=(80, 20), det_iters=200,
                  ade_images=(60, 20), seg_iters=150, runs_per_cell=dict(in1k=3, table6=1, det=1, seg=1)),
    # The premise of the paper at CPU scale: 20x more unlabelled (4,096) than labelled (200) images, 4x
    # the tiny pre-training, a 500-image validation set to shrink the noise, and enough seeds to test
    # every finding but the fourth (estimated at about 85 min on 2 cores from the tiny per-run timings).
    "small": Scale(pretrain_images=4096, pretrain_epochs=30, dvae_epochs=6, in1k_images=(200, 500),
                   cls_images=(200, 100), cls_epochs=20, scratch_epochs=30, coco_images=(80, 20), det_iters=200,
                   ade_images=(60, 20), seg_iters=150, runs_per_cell=dict(in1k=5, table6=1, det=2, seg=3)),
    # Two seeds where the chain is cheap, so that std, n_runs and the verdicts are exercised; Table 6
    # keeps one to exercise a cell without a standard deviation.
    "smoke": Scale(pretrain_images=64, pretrain_epochs=1, dvae_epochs=1, in1k_images=(20, 10), cls_images=(20, 10),
                   cls_epochs=1, scratch_epochs=1, coco_images=(8, 4), det_iters=2, ade_images=(8, 4), seg_iters=2,
                   runs_per_cell=dict(in1k=2, table6=1, det=2, seg=2)),
}


class Preset:
    """Names runs `kind-...-SIZE-SOURCE` and builds them (with their dependencies) on demand."""

    sizes = {}  # model size of a table column ("B", ...) -> the size label of this preset's runs
    # one run per cell unless a preset says otherwise: at paper scale each extra seed costs GPU-days
    runs_per_cell = dict(in1k=1, table6=1, det=1, seg=1)

    def __init__(self, name, out, args):
        self.name, self.args, self.root_dir = name, args, out
        self.runs_dir = os.path.join(out, "runs", name)
        self.results = os.path.join(out, "results")
        self.runs = {}

    def size(self, column):
        size = SIZE_OF_COLUMN[column]
        if size not in self.sizes:
            raise Unavailable(f"preset {self.name} runs the {'/'.join('ViT-' + s for s in self.sizes)} column(s) only")
        return self.sizes[size]

    def seeds(self, transfer):
        """The seeds of every cell of one transfer kind (in1k, table6, det, seg)."""
        return SEEDS[:self.runs_per_cell[transfer]]

    def get(self, name):
        if name not in self.runs:
            seeded = re.fullmatch(r"(.*)-seed(\d+)", name)  # transfer runs: NAME-seedN, the seed their last argument
            kind, *parts = (seeded[1] if seeded else name).split("-")
            run = getattr(self, kind)(*parts, *((int(seeded[2]),) if seeded else ()))
            run.name, run.out_dir = name, self.out(name)
            for dep in run.deps:  # an unavailable dependency makes this run unavailable too
                self.get(dep)
            self.runs[name] = run
        return self.runs[name]

    def out(self, name):
        return os.path.abspath(os.path.join(self.runs_dir, name))

    def checkpoint(self, source, size):
        """The encoder a transfer run starts from, and the run that makes it: the "supervised" encoder is
        the from-scratch classifier of the first seed, as there is one pre-training per MAE target."""
        run = f"cls-imagenet-{size}-scratch-seed{SEEDS[0]}" if source == "supervised" else f"pretrain-{size}-{source}"
        return os.path.join(self.out(run), "checkpoint-last.pth"), run

    def csv(self, kind):
        return os.path.abspath(os.path.join(self.results, "runs", f"{kind}.csv"))


def tool_path(script):
    return os.path.join(_bootstrap.ROOT, "tools", script)


def tool(script, *args):
    return [sys.executable, tool_path(script), *map(str, args)]


class CpuPreset(Preset):
    """tiny / smoke: generated data and the tiny encoder of the *_tiny* / tiny_cpu configs (ViT-Tiny
    width, 4 blocks, 8 px patches, 64 px; Mask R-CNN at 128 px); the ViT-B column stands for it."""

    sizes = {"B": "tiny"}

    def __init__(self, name, out, args):
        super().__init__(name, out, args)
        self.scale = SCALES[name]
        self.runs_per_cell = self.scale.runs_per_cell
        self.data = os.path.abspath(os.path.join(out, "data", name))

    def toy_data(self):
        return Run(func=self.write_data)

    def write_data(self):
        from tools import make_toy_data as toy

        s, d = self.scale, self.data
        toy.write_image_folder(os.path.join(d, "pretrain"), s.pretrain_images, size=80, seed=0)
        toy.write_classification_sets(os.path.join(d, "cls"), *s.in1k_images, size=64, seed=1, datasets=("imagenet",))
        for k, dataset in enumerate(TABLE6_DATASETS.values()):  # each with scenes of its own
            toy.write_classification_sets(os.path.join(d, "cls"), *s.cls_images, size=64, seed=2 + k, datasets=(dataset,))
        toy.write_coco(os.path.join(d, "coco"), *s.coco_images, size=128, seed=8)
        toy.write_ade20k(os.path.join(d, "ade"), *s.ade_images, size=64, seed=9)

    def dvae(self):
        s = self.scale
        return Run(deps=("toy_data",), argv=tool(
            "train_dvae.py", "--data", os.path.join(self.data, "pretrain"), "--output-dir", self.out("dvae"),
            "--epochs", s.dvae_epochs, "--batch-size", 64 if s.pretrain_images >= 64 else s.pretrain_images, "--resume"))

    def pretrain(self, size, target):
        s, deps = self.scale, ("toy_data",)
        extra = []
        if target == "dvae_token":
            extra, deps = [f"tokenizer={os.path.join(self.out('dvae'), 'dvae.pth')}"], ("toy_data", "dvae")
        return Run(deps=deps, argv=tool(
            "pretrain.py", "--cfg", "pretrain/mae_vit_tiny_cpu.py", "--data", os.path.join(self.data, "pretrain"),
            "--output-dir", self.out(f"pretrain-{size}-{target}"), "--resume", "auto", f"target={target}",
            f"epochs={s.pretrain_epochs}", f"warmup_epochs={max(1, s.pretrain_epochs // 10)}",
            f"vis_every={s.pretrain_epochs}",
            f"batch_size={min(32, s.pretrain_images)}", *extra))

    def cls(self, dataset, size, source, seed):
        s = self.scale
        epochs = s.scratch_epochs if source == "scratch" else s.cls_epochs
        argv = tool("train_cls.py", "--cfg", "cls/scratch_tiny_cpu.py" if source == "scratch" else "cls/tiny_cpu.py",
                    "--dataset", dataset, "--data-root", os.path.join(self.data, "cls", dataset),
                    "--output-dir", self.out(f"cls-{dataset}-{size}-{source}-seed{seed}"), "--resume", "auto",
                    f"epochs={epochs}", f"seed={seed}", f"results_csv={self.csv('cls')}",
                    f"batch_size={min(32, s.cls_images[0])}")
        deps = ("toy_data",)
        if source != "scratch":
            init, run = self.checkpoint(source, size)
            argv += ["--init", init]
            deps += (run,)
        return Run(argv=argv, deps=deps, results_csv=self.csv("cls"))

    def det(self, size, source, seed):
        init, run = self.checkpoint(source, size)
        n, coco = self.scale.det_iters, os.path.join(self.data, "coco")
        # the recipe's steps at 89% and 96%, kept distinct and inside the schedule for very short runs
        first = max(1, int(n * 0.89))
        second = max(first + 1, int(n * 0.96))
        return Run(deps=("toy_data", run), results_csv=self.csv("det"), argv=tool(
            "train_det.py", "--cfg", "det/mask_rcnn_vit_tiny.py", "--init", init,
            "--output-dir", self.out(f"det-{size}-{source}-seed{seed}"), "--resume", "--results-csv", self.csv("det"),
            "--dataset", f"toy_coco_train={coco}/annotations/instances_train.json:{coco}/train",
            "--dataset", f"toy_coco_val={coco}/annotations/instances_val.json:{coco}/val",
            f"train.max_iter={n}", f"train.eval_period={n}",
            f"train.checkpointer.period={max(1, n // 2)}", f"lr_multiplier.scheduler.num_updates={max(n, second + 1)}",
            f"lr_multiplier.scheduler.milestones=[{first},{second}]",
            f"lr_multiplier.warmup_length={min(0.25, 25 / n)}", f"train.seed={seed}"))

    def seg(self, size, source, seed):
        init, run = self.checkpoint(source, size)
        n, warmup = self.scale.seg_iters, max(1, self.scale.seg_iters // 10)
        schedule = [dict(type="LinearLR", start_factor=1e-6, by_epoch=False, begin=0, end=warmup),
                    dict(type="PolyLR", power=1.0, eta_min=0.0, by_epoch=False, begin=warmup, end=n)]
        return Run(deps=("toy_data", run), results_csv=self.csv("seg"), argv=tool(
            "train_seg.py", "--cfg", "seg/upernet_vit_tiny.py", "--init", init,
            "--data-root", os.path.join(self.data, "ade", "ADEChallengeData2016"),
            "--work-dir", self.out(f"seg-{size}-{source}-seed{seed}"), "--resume", "auto", "--results-csv",
            self.csv("seg"), f"train_cfg.max_iters={n}", f"train_cfg.val_interval={n}", f"param_scheduler={schedule}",
            f"default_hooks.checkpoint.interval={max(1, n // 2)}", f"randomness.seed={seed}"))


class PaperPreset(Preset):
    """The real datasets under --data-root and the paper's recipes, on GPUs (torchrun / Detectron2's
    launch); the same command on every machine."""

    sizes = {"B": "B", "L": "L", "H": "H", "H448": "H448"}
    PRETRAIN = {"B": "mae_vit_base", "L": "mae_vit_large", "H": "mae_vit_huge"}
    FINETUNE = {"B": "finetune_vit_b", "L": "finetune_vit_l", "H": "finetune_vit_h", "H448": "finetune_vit_h_448"}
    SCRATCH = {"B": "scratch_vit_b"}
    DET = {"B": "mask_rcnn_vit_b", "L": "mask_rcnn_vit_l"}
    SEG = {"B": "upernet_vit_b", "L": "upernet_vit_l"}

    def __init__(self, name, out, args):
        super().__init__(name, out, args)
        if not args.data_root:
            raise SystemExit("error: --preset paper needs --data-root (holding imagenet/, coco/, ADEChallengeData2016/, "
                             "inat2017/, inat2018/, inat2019/, places205/, places365/)")
        self.root = os.path.abspath(args.data_root)

    def torchrun(self, script, *args):
        a = self.args
        return ["torchrun", f"--nnodes={a.nnodes}", f"--node_rank={a.node_rank}", f"--nproc_per_node={a.nproc_per_node}",
                f"--master_addr={a.master_addr}", f"--master_port={a.master_port}",
                tool_path(script), *map(str, args)]

    def pretrain(self, size, target):
        if size not in self.PRETRAIN:
            raise Unavailable(f"no pre-training config for ViT-{size}")
        extra = []
        if target == "dvae_token":
            if not self.args.dalle_encoder:
                raise Unavailable("the dVAE-token target needs DALL-E's encoder weights (--dalle-encoder encoder.pkl)")
            extra = [f"tokenizer={os.path.abspath(self.args.dalle_encoder)}"]
        return Run(argv=self.torchrun(
            "pretrain.py", "--cfg", f"pretrain/{self.PRETRAIN[size]}.py", "--data", os.path.join(self.root, "imagenet", "train"),
            "--output-dir", self.out(f"pretrain-{size}-{target}"), "--resume", "auto", f"target={target}", *extra))

    def cls(self, dataset, size, source, seed):
        recipes = self.SCRATCH if source == "scratch" else self.FINETUNE
        if size not in recipes:
            raise Unavailable(f"no {'from-scratch' if source == 'scratch' else 'fine-tuning'} recipe for ViT-{size} "
                              f"in configs/cls/ (the paper's is not verified here)")
        argv = self.torchrun("train_cls.py", "--cfg", f"cls/{recipes[size]}.py", "--dataset", dataset,
                             "--data-root", os.path.join(self.root, dataset), "--output-dir",
                             self.out(f"cls-{dataset}-{size}-{source}-seed{seed}"), "--resume", "auto", f"seed={seed}",
                             f"results_csv={self.csv('cls')}")
        deps = ()
        if source != "scratch":
            init, run = self.checkpoint(source, "H" if size == "H448" else size)
            argv += ["--init", init]
            deps = (run,)
        return Run(argv=argv, deps=deps, results_csv=self.csv("cls"))

    def det(self, size, source, seed):
        if size not in self.DET:
            raise Unavailable(f"no Mask R-CNN config for ViT-{size}")
        init, run = self.checkpoint(source, size)
        a = self.args
        return Run(deps=(run,), results_csv=self.csv("det"), argv=[
            "python", tool_path("train_det.py"), "--cfg", f"det/{self.DET[size]}.py",
            "--init", init, "--data-root", self.root, "--output-dir", self.out(f"det-{size}-{source}-seed{seed}"),
            "--resume", "--results-csv", self.csv("det"), "--num-gpus", str(a.nproc_per_node), "--num-machines",
            str(a.nnodes), "--machine-rank", str(a.node_rank), "--dist-url", f"tcp://{a.master_addr}:{a.master_port}",
            f"train.seed={seed}"])

    def seg(self, size, source, seed):
        if size not in self.SEG:
            raise Unavailable(f"no UperNet config for ViT-{size}")
        init, run = self.checkpoint(source, size)
        return Run(deps=(run,), results_csv=self.csv("seg"), argv=self.torchrun(
            "train_seg.py", "--cfg", f"seg/{self.SEG[size]}.py", "--init", init,
            "--data-root", os.path.join(self.root, "ADEChallengeData2016"), "--work-dir",
            self.out(f"seg-{size}-{source}-seed{seed}"), "--resume", "auto", "--results-csv", self.csv("seg"),
            f"randomness.seed={seed}"))


PRESETS = {"tiny": CpuPreset, "small": CpuPreset, "smoke": CpuPreset, "paper": PaperPreset}


# -- cells -> runs ----------------------------------------------------------------------------------
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


# -- running ---------------------------------------------------------------------------------------
def last_record(run):
    """The run's row in its results CSV (the last one, if evaluated again)."""
    if not os.path.isfile(run.results_csv):
        return None
    with open(run.results_csv, newline="") as f:
        rows = [r for r in csv.DictReader(f) if r.get("run_dir") == os.path.abspath(run.out_dir)]
    return rows[-1] if rows else None


def execute(run, check_record=True):
    os.makedirs(run.out_dir, exist_ok=True)
    log = os.path.join(run.out_dir, "reproduce.log")
    start = time.perf_counter()
    if run.func:
        run.func()
    else:
        with open(log, "a") as f:
            f.write(f"$ {shlex.join(run.argv)}\n")
            f.flush()
            env = dict(os.environ, PYTHONUNBUFFERED="1")
            code = subprocess.call(run.argv, stdout=f, stderr=subprocess.STDOUT, env=env, cwd=_bootstrap.ROOT)
        if code != 0:
            with open(log) as f:
                tail = "".join(f.readlines()[-25:])
            raise SystemExit(f"{tail}\nerror: run {run.name} failed (exit {code}); its log: {log}\n"
                             f"fix the cause and run the same command again: finished runs are kept, this one resumes")
        if run.results_csv and check_record and last_record(run) is None:
            raise SystemExit(f"error: run {run.name} finished but left no row for {run.out_dir} in {run.results_csv}")
    run.seconds = time.perf_counter() - start
    with open(run.marker, "w") as f:
        f.write(f"{run.seconds:.1f}\n")


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


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", choices=sorted(PRESETS), default="tiny")
    parser.add_argument("--out", default=".", help="where data/, runs/ and results/ go (default: here)")
    parser.add_argument("--tables", default="3,4,5,6,7", help="comma-separated subset of 3,4,5,6,7")
    parser.add_argument("--dry-run", action="store_true", help="list the runs (done / pending) and stop")
    paper = parser.add_argument_group("paper preset")
    paper.add_argument("--data-root", help="holds imagenet/, coco/, ADEChallengeData2016/, inat2017-2019/, places205/, places365/")
    paper.add_argument("--dalle-encoder", help="DALL-E's released encoder.pkl (the Table 7 token target)")
    paper.add_argument("--launch", action="store_true", help="run the commands here instead of writing them to a script")
    paper.add_argument("--nproc-per-node", type=int, default=8)
    paper.add_argument("--nnodes", type=int, default=1)
    paper.add_argument("--node-rank", type=int, default=0)
    paper.add_argument("--master-addr", default="127.0.0.1")
    paper.add_argument("--master-port", type=int, default=29500)
    args = parser.parse_args(argv)
    try:
        tables = sorted({int(t) for t in args.tables.split(",")})
    except ValueError:
        parser.error(f"--tables {args.tables!r}: expected numbers such as 3,4,7")
    if not set(tables) <= set(TABLES):
        parser.error(f"--tables {args.tables!r}: only tables {sorted(TABLES)} are reproduced")

    preset = PRESETS[args.preset](args.preset, args.out, args)
    cells = plan(preset, tables)
    names = ordered(preset, [run for c in cells for run in c.runs])
    pending = [n for n in names if not preset.runs[n].done]
    print(f"[reproduce] preset {args.preset}: {len(names)} runs for tables {','.join(map(str, tables))}, "
          f"{len(names) - len(pending)} already done")
    if args.dry_run:
        for name in names:
            print(f"  {'done   ' if preset.runs[name].done else 'pending'} {name}")
        return
    if args.preset == "paper" and not args.launch:
        print(f"[reproduce] commands: {write_script(preset, names)} (or add --launch to run them here)")
    else:
        started = time.perf_counter()
        for i, name in enumerate(pending, 1):
            print(f"[reproduce] {i}/{len(pending)} {name} ...", flush=True)
            execute(preset.runs[name], check_record=args.preset != "paper" or args.node_rank == 0)
            print(f"[reproduce]     done in {preset.runs[name].seconds:.0f} s", flush=True)
        if pending:
            print(f"[reproduce] {len(pending)} runs in {(time.perf_counter() - started) / 60:.1f} min")
        print(f"[reproduce] timings: {write_timings(preset, names)}")
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
    recon = os.path.join(preset.runs_dir, "pretrain-tiny-norm_pixel", "figures") if isinstance(preset, CpuPreset) else ""
    if recon and os.path.isdir(recon) and os.listdir(recon):
        print(f"[reproduce] reconstructions: {os.path.join(recon, sorted(os.listdir(recon))[-1])}")
    dvae_figure = os.path.join(preset.runs_dir, "dvae", "reconstructions.png")
    if os.path.isfile(dvae_figure):
        print(f"[reproduce] dVAE tokenizer reconstructions: {dvae_figure}")


if __name__ == "__main__":
    sys.exit(main())
