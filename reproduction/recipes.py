"""The runs of a reproduction: how a run's name becomes the command line of one of the project's tools.

Run names (the one place they are defined; Preset.get parses them):

    toy_data                          the generated data                     generated-data presets, in-process
    dvae                              the dVAE tokenizer                     generated-data presets
    pretrain-SIZE-TARGET              MAE pre-training                       TARGET: pixel, norm_pixel, dvae_token
    pretrain-SIZE-TARGET-SETTING...   MAE pre-training, settings changed     ablations presets; SETTING: mask0.5,
                                      from the default (Table 1, Figure 5)   dec1, dim64, enctoken, aug_none, grid,
                                                                             ... (AblationPreset.SETTINGS)
    pretrain-SIZE-supervised          supervised pre-training                CPU presets: the pre-training images
                                                                             with their labels (train_cls.py)
    cls-DATASET-SIZE-SOURCE-seedS     classification fine-tuning             DATASET: imagenet, inat2017, ...
    cls-DATASET-SIZE-SOURCE-PROTOCOL-seedS                                   ablations presets; PROTOCOL: lin
                                      linear probing or partial fine-tuning  or partialK, K: 0.5 (the MLP half of
                                      of the last K blocks                   the last block), 1, 2, ... (Figure 9)
    det-SIZE-SOURCE-seedS             Mask R-CNN on COCO
    seg-SIZE-SOURCE-seedS             UperNet on ADE20K

SIZE is the preset's label of a table column's model (tiny for the CPU presets, small for the gpu presets;
B, L, H, H448 on the paper preset), SOURCE the encoder a transfer starts from: a pre-training's TARGET[-SETTING...], "scratch"
(classification only: no encoder) or "supervised" (supervised pre-training on the images MAE
pre-trains on, with their labels: on the paper preset the from-scratch ImageNet classifier of the
first seed, cls-imagenet-SIZE-scratch-seed0, as in the paper; on the CPU presets
pretrain-SIZE-supervised, as their labelled ImageNet-layout set is a few hundred images), and S one
of SEEDS, the last argument of the run's recipe.

The run kind (the name's first part) picks the recipe, a Preset method (Preset.recipes): the tool is
TOOLS[kind] (common/project.py), its config CPU_CONFIGS[...] on the CPU presets, GPU_CONFIGS[...] on the gpu
presets, PaperPreset.PRETRAIN / FINETUNE / SCRATCH / DET / SEG[SIZE] on the paper preset; each method lists the
tool's arguments, and the preset's `command` (CpuPreset) or `torchrun` (PaperPreset) its launcher.
"""
from __future__ import annotations

import argparse
import multiprocessing
import os
import re
import sys
from collections.abc import Callable, Iterable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, replace
from functools import partial
from typing import Any

from common.project import TOOLS, tool_path

# the configs (under configs/) of the CPU presets' runs
CPU_CONFIGS = {"pretrain": "pretrain/mae_vit_tiny_cpu.py", "cls": "cls/tiny_cpu.py", "cls-scratch": "cls/scratch_tiny_cpu.py",
               "det": "det/mask_rcnn_vit_tiny.py", "seg": "seg/upernet_vit_tiny.py"}
# the gpu presets' (GpuPreset): a ViT-S-wide 8-block encoder, the GPU's precision, larger batches
GPU_CONFIGS = {"pretrain": "pretrain/mae_vit_small_gpu.py", "cls": "cls/small_gpu.py", "cls-scratch": "cls/scratch_small_gpu.py",
               "det": "det/mask_rcnn_vit_small_gpu.py", "seg": "seg/upernet_vit_small_gpu.py"}
TABLE6_DATASETS = {"iNat 2017": "inat2017", "iNat 2018": "inat2018", "iNat 2019": "inat2019",
                   "Places205": "places205", "Places365": "places365"}
SIZE_OF_COLUMN = {"ViT-B": "B", "ViT-L": "L", "ViT-H": "H", "ViT-H448": "H448"}


class Unavailable(Exception):
    """A cell this preset cannot produce; the message becomes the cell's note."""


@dataclass
class Run:
    argv: list | None = None  # a tool's command line, or
    func: Callable[[], None] | None = None  # an in-process step (generating the toy data)
    deps: tuple = ()  # names of the runs it needs
    result_kind: str = ""  # transfer runs: the kind of their result row (common.results: cls, det, seg) ...
    results_csv: str = ""  # ... and the CSV it lands in
    name: str = ""  # set by Preset.get
    out_dir: str = ""
    seconds: float = 0.0

    @property
    def marker(self) -> str:
        return os.path.join(self.out_dir, "reproduce.done")

    @property
    def done(self) -> bool:
        return os.path.isfile(self.marker)


# -- presets -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Scale:
    """How big each step of the generated-data presets (CpuPreset, GpuPreset) is."""
    pretrain_images: int
    pretrain_val_images: int  # held out of pre-training: the supervised pre-training's validation set
    pretrain_epochs: int
    supervised_epochs: int  # supervised pre-training on the same images, with their labels
    dvae_epochs: int
    in1k_images: tuple[int, int]  # (train, val) for the ImageNet-layout fine-tuning of Tables 3 and 7
    cls_images: tuple[int, int]  # (train, val) for each Table 6 dataset
    cls_epochs: int  # fine-tuning on the ImageNet layout (Tables 3 and 7)
    scratch_epochs: int  # the from-scratch classifier of the labelled ImageNet-layout set (Table 3)
    table6_epochs: int  # fine-tuning on each Table 6 dataset
    coco_images: tuple[int, int]
    det_iters: int
    ade_images: tuple[int, int]
    seg_iters: int
    targets: tuple  # the MAE targets pre-trained (Table 7's rows)
    dense_sources: tuple  # the encoders Mask R-CNN and UperNet start from (Tables 4, 5 and 7's dense columns)
    # transfer kind ("in1k": Tables 3 and 7's classification, "table6", "det", "seg") -> how many of
    # SEEDS each of its cells runs; one pre-training per target (seed 0) feeds every seed
    runs_per_cell: dict
    pretrain_batch: int = 32  # per step, as are the next two (capped at the images there are)
    cls_batch: int = 32
    dvae_batch: int = 64
    pretrain_shards: int = 1  # the pre-training images are drawn in this many parts, written in parallel
    pretrain_format: str = "png"  # or "jpg", which the gpu data backend decodes on the GPU


# Fixed before any result was seen and the same for every row of a table: a cell with n runs uses
# the first n, so a comparison never pairs different seeds.
SEEDS = (0, 1, 2, 3, 4)

ALL_TARGETS = ("pixel", "norm_pixel", "dvae_token")
# The CPU presets' classification runs load in their own process: starting the configs' 2 workers
# every epoch cost 1.15 s an epoch (12 epochs of 100 images: 44.7 s with 2 workers, 30.9 s without,
# docs/benchmarks.md), more than the epoch's compute, and each run has one core anyway (--jobs 2).
IN_PROCESS_LOADING = ("num_workers=0",)


def cls_schedule(epochs: int) -> tuple[str, ...]:
    """tools/train_cls.py's length settings in the CPU presets: the fine-tuning recipe's 5 warm-up epochs
    of 100 (at least one), validated 4 times (the last is the result), a numbered checkpoint halfway."""
    return (f"epochs={epochs}", f"warmup_epochs={max(1, epochs // 20)}", f"eval_every={max(1, epochs // 4)}",
            f"save_every={max(1, epochs // 2)}")

SCALES = {
    # Both CPU presets follow the paper's premise at their scale: far more unlabelled images (MAE
    # pre-training) than labelled ones, fine-tuning long enough to converge (with 8-20 epochs both
    # models ended far from converged and MAE came out behind: docs/reproduction.md), the from-scratch
    # classifier given twice the fine-tuning epochs (the paper's ViT-B: 100 fine-tuning, 300 from
    # scratch), and a 500-image validation set. The supervised baseline of Tables 4 and 5 is trained on
    # the pre-training images with their labels (pretrain-SIZE-supervised), and detection and
    # segmentation have categories of their own (reproduction/toy_data.py). Each cell a finding uses
    # has 3 runs. Mask R-CNN and UperNet run 400 iterations in `small`, where a pilot's validation
    # curves had flattened (UperNet from MAE: mIoU 34.5, 40.9, 38.8, 42.8, 42.9 at 150-450).
    # tiny, `make demo` (--jobs 2, 30 minutes): 20x more unlabelled (2,048) than labelled (100)
    # images; the normalised-pixel target only (Table 7's comparisons are left to `small`); Mask
    # R-CNN 200 and UperNet 250 iterations: at 400, one Mask R-CNN run took 364-383 s here, and the 12
    # dense runs would need about an hour of run time where the 30 minutes leave about half that.
    "tiny": Scale(pretrain_images=2048, pretrain_val_images=200, pretrain_epochs=20, supervised_epochs=15, dvae_epochs=4,
                  in1k_images=(100, 500), cls_images=(200, 100), cls_epochs=100, scratch_epochs=200, table6_epochs=8,
                  coco_images=(80, 80), det_iters=200, ade_images=(80, 80), seg_iters=250, targets=("norm_pixel",),
                  dense_sources=("norm_pixel", "supervised"), runs_per_cell=dict(in1k=3, table6=1, det=3, seg=3)),
    # small: 40x more unlabelled (4,096) than labelled images and every target and transfer of Tables 3-7.
    "small": Scale(pretrain_images=4096, pretrain_val_images=500, pretrain_epochs=30, supervised_epochs=20, dvae_epochs=6,
                   in1k_images=(100, 500), cls_images=(200, 100), cls_epochs=100, scratch_epochs=200, table6_epochs=20,
                   coco_images=(80, 80), det_iters=400, ade_images=(80, 80), seg_iters=400, targets=ALL_TARGETS,
                   dense_sources=(*ALL_TARGETS, "supervised"), runs_per_cell=dict(in1k=3, table6=1, det=3, seg=3)),
    # Two seeds where the chain is cheap, so that std, n_runs and the verdicts are exercised; Table 6
    # keeps one to exercise a cell without a standard deviation.
    "smoke": Scale(pretrain_images=64, pretrain_val_images=16, pretrain_epochs=1, supervised_epochs=1, dvae_epochs=1,
                   in1k_images=(20, 10), cls_images=(20, 10), cls_epochs=1, scratch_epochs=1, table6_epochs=1,
                   coco_images=(8, 4), det_iters=2, ade_images=(8, 4), seg_iters=2, targets=ALL_TARGETS,
                   dense_sources=(*ALL_TARGETS, "supervised"), runs_per_cell=dict(in1k=2, table6=1, det=2, seg=2)),
    # gpu (GpuPreset, meant for at most 6 minutes on one H100/H200 with --jobs 8, compilation included; not
    # yet measured on one): small's graph, every target and transfer, 3 runs a cell, at a scale well above
    # it: 32,768 pre-training images (33x the labelled ImageNet-layout set of 1,000), drawn in 16 shards
    # and stored as JPEGs for the gpu data backend, a ViT-S-wide encoder, the configs' GPU batches.
    "gpu": Scale(pretrain_images=32768, pretrain_val_images=2048, pretrain_epochs=20, supervised_epochs=8, dvae_epochs=3,
                 in1k_images=(1000, 1000), cls_images=(1000, 500), cls_epochs=50, scratch_epochs=100, table6_epochs=20,
                 coco_images=(600, 200), det_iters=600, ade_images=(600, 200), seg_iters=600, targets=ALL_TARGETS,
                 dense_sources=(*ALL_TARGETS, "supervised"), runs_per_cell=dict(in1k=3, table6=3, det=3, seg=3),
                 pretrain_batch=256, cls_batch=64, dvae_batch=256, pretrain_shards=16, pretrain_format="jpg"),
    # gpu-smoke: the gpu preset's runs, launchers and data formats for a few iterations (a pipeline check
    # that runs on a CPU too); one seed a cell, so that every kind of run starts once
    "gpu-smoke": Scale(pretrain_images=64, pretrain_val_images=16, pretrain_epochs=1, supervised_epochs=1, dvae_epochs=1,
                       in1k_images=(20, 10), cls_images=(20, 10), cls_epochs=1, scratch_epochs=1, table6_epochs=1,
                       coco_images=(8, 4), det_iters=2, ade_images=(8, 4), seg_iters=2, targets=ALL_TARGETS,
                       dense_sources=(*ALL_TARGETS, "supervised"), runs_per_cell=dict(in1k=1, table6=1, det=1, seg=1),
                       pretrain_batch=16, cls_batch=16, dvae_batch=16, pretrain_shards=2, pretrain_format="jpg"),
}
# The ablations presets (AblationPreset): the data, encoder, pre-training and fine-tuning lengths of
# tiny (and of smoke, for the pipeline check), with the seeds of their transfer kinds: linear probes
# 3 (a third of a fine-tuning's time), fine-tuning 2 (the fewest that give a comparison its standard
# error), partial fine-tuning 1 (Figure 9 enters no finding). Its time is unmeasured, and above the
# 50 min first estimated (docs/reproduction.md, "The ablations preset").
SCALES["ablations"] = replace(SCALES["tiny"], targets=ALL_TARGETS, runs_per_cell=dict(lin=3, ft=2, partial=1))
SCALES["ablations-smoke"] = replace(SCALES["smoke"], runs_per_cell=dict(lin=2, ft=2, partial=1))


class Preset:
    """Names runs (the grammar above) and builds them, with their dependencies, on demand."""

    sizes: dict[str, str] = {}  # model size of a table column ("B", ...) -> the size label of this preset's runs
    # one run per cell unless a preset says otherwise: at paper scale each extra seed costs GPU-days
    runs_per_cell = dict(in1k=1, table6=1, det=1, seg=1)

    def __init__(self, name: str, out: str, args: argparse.Namespace) -> None:
        self.name, self.args, self.root_dir = name, args, out
        self.runs_dir = os.path.join(out, "runs", name)
        self.results = os.path.join(out, "results")
        self.runs: dict[str, Run] = {}

    def recipes(self) -> dict[str, Callable[..., Run]]:
        """run kind -> the method that builds its Run from the other parts of the name (and the seed)."""
        return {"pretrain": self.pretrain, "cls": self.cls, "det": self.det, "seg": self.seg}

    def size(self, column: str) -> str:
        size = SIZE_OF_COLUMN[column]
        if size not in self.sizes:
            raise Unavailable(f"preset {self.name} runs the {'/'.join('ViT-' + s for s in self.sizes)} column(s) only")
        return self.sizes[size]

    def seeds(self, transfer: str) -> tuple[int, ...]:
        """The seeds of every cell of one transfer kind (in1k, table6, det, seg)."""
        return SEEDS[:self.runs_per_cell[transfer]]

    def get(self, name: str) -> Run:
        if name not in self.runs:
            seeded = re.fullmatch(r"(.*)-seed(\d+)", name)  # transfer runs: NAME-seedN, the seed their last argument
            kind, *parts = (seeded[1] if seeded else name).split("-")
            recipes = self.recipes()
            if kind not in recipes:
                raise ValueError(f"run {name!r}: preset {self.name} has no {kind!r} runs (it has {', '.join(recipes)})")
            run = recipes[kind](*parts, *((int(seeded[2]),) if seeded else ()))
            run.name, run.out_dir = name, self.out(name)
            for dep in run.deps:  # an unavailable dependency makes this run unavailable too
                self.get(dep)
            self.runs[name] = run
        return self.runs[name]

    def out(self, name: str) -> str:
        return os.path.abspath(os.path.join(self.runs_dir, name))

    def checkpoint(self, source: str, size: str) -> tuple[str, str]:
        """The encoder a transfer run starts from, and the run that makes it (one pre-training per source)."""
        run = self.supervised_run(size) if source == "supervised" else f"pretrain-{size}-{source}"
        return os.path.join(self.out(run), "checkpoint-last.pth"), run

    def supervised_run(self, size: str) -> str:
        """Supervised pre-training on ImageNet with its labels: the paper's baseline of Tables 4 and 5 is
        the from-scratch ImageNet classifier (of the first seed)."""
        return f"cls-imagenet-{size}-scratch-seed{SEEDS[0]}"

    def csv(self, kind: str) -> str:
        return os.path.abspath(os.path.join(self.results, "runs", f"{kind}.csv"))

    def recorded(self, kind: str) -> dict[str, Any]:
        """The Run fields of a transfer run whose tool records a `kind` result row in results/runs/KIND.csv."""
        return dict(result_kind=kind, results_csv=self.csv(kind))

    def pretrain(self, size: str, target: str) -> Run:
        raise NotImplementedError

    def cls(self, dataset: str, size: str, source: str, seed: int) -> Run:
        raise NotImplementedError

    def det(self, size: str, source: str, seed: int) -> Run:
        raise NotImplementedError

    def seg(self, size: str, source: str, seed: int) -> Run:
        raise NotImplementedError


def tool(script: str, *args: object) -> list[str]:
    return [sys.executable, tool_path(script), *map(str, args)]


class CpuPreset(Preset):
    """tiny / smoke / small: generated data and the tiny encoder of the *_tiny* / tiny_cpu configs
    (ViT-Tiny width, 4 blocks, 8 px patches, 64 px; Mask R-CNN at 128 px); the ViT-B column stands for it."""

    sizes = {"B": "tiny"}
    CONFIGS = CPU_CONFIGS
    ENCODER = "a ViT-Tiny-width, 4-block, 8 px-patch ViT at 64 px"  # what the ViT-B column holds (the tables' note)
    loading: tuple[str, ...] = IN_PROCESS_LOADING  # the classification runs' data-loading settings

    def command(self, kind: str, *args: object) -> list[str]:
        """The command line of one run of TOOLS[kind]'s tool (here: the tool in this Python)."""
        return tool(TOOLS[kind].script, *args)

    def __init__(self, name: str, out: str, args: argparse.Namespace) -> None:
        super().__init__(name, out, args)
        self.scale = SCALES[name]
        self.runs_per_cell = self.scale.runs_per_cell
        # --data-seed N draws other data and other pre-training initialisations: the same experiment
        # on another draw, in folders of its own (runs/tiny-data1, results-data1), transfer seeds unchanged
        self.data_seed = getattr(args, "data_seed", 0) or 0
        draw = f"{name}-data{self.data_seed}" if self.data_seed else name
        self.runs_dir = os.path.join(out, "runs", draw)
        if self.data_seed:
            self.results = os.path.join(out, f"results-data{self.data_seed}")
        self.data = os.path.abspath(os.path.join(out, "data", draw))

    def recipes(self) -> dict[str, Callable[..., Run]]:
        return {"toy_data": self.toy_data, "dvae": self.dvae, **super().recipes()}

    def toy_data(self) -> Run:
        return Run(func=self.write_data)

    def write_data(self) -> None:
        """Every generated set, the sets (and the pre-training images' shards) in parallel processes: each
        draws from a generator of its own, so the files do not depend on how many run at once."""
        from reproduction import toy_data as toy

        s, d, seed = self.scale, self.data, 10 * self.data_seed  # each set its own seed: seed + 0 .. 9
        parts: list[Callable[[], object]] = [
            partial(toy.write_image_folder_shard, os.path.join(d, "pretrain"), s.pretrain_images, 80, seed,
                    s.pretrain_val_images, s.pretrain_shards, shard, s.pretrain_format) for shard in range(s.pretrain_shards)]
        parts.append(partial(toy.write_classification_sets, os.path.join(d, "cls"), *s.in1k_images, size=64,
                             seed=seed + 1, datasets=("imagenet",)))
        for k, dataset in enumerate(TABLE6_DATASETS.values()):  # each with scenes of its own
            parts.append(partial(toy.write_classification_sets, os.path.join(d, "cls"), *s.cls_images, size=64,
                                 seed=seed + 2 + k, datasets=(dataset,)))
        parts.append(partial(toy.write_coco, os.path.join(d, "coco"), *s.coco_images, size=128, seed=seed + 8))
        parts.append(partial(toy.write_ade20k, os.path.join(d, "ade"), *s.ade_images, size=64, seed=seed + 9))
        # spawned, not forked: reproduce.py runs this in one of its threads
        with ProcessPoolExecutor(min(len(parts), os.cpu_count() or 1), mp_context=multiprocessing.get_context("spawn")) as pool:
            for done in [pool.submit(part) for part in parts]:
                done.result()

    def dvae(self) -> Run:
        s = self.scale
        return Run(deps=("toy_data",), argv=self.command(
            "dvae", "--data", os.path.join(self.data, "pretrain"), "--output-dir", self.out("dvae"),
            "--epochs", s.dvae_epochs, "--batch-size", min(s.dvae_batch, s.pretrain_images), "--resume",
            "--seed", self.data_seed))

    def supervised_run(self, size: str) -> str:
        """The supervised baseline sees the same images as MAE's pre-training, with their labels (the
        largest classification object's class), as the paper's does with ImageNet; the ImageNet-layout
        set of Table 3 is a few hundred labelled images, not a pre-training set."""
        return f"pretrain-{size}-supervised"

    def pretrain(self, size: str, target: str) -> Run:
        s = self.scale
        deps: tuple[str, ...] = ("toy_data",)
        if target not in (*s.targets, "supervised"):
            raise Unavailable(f"preset {self.name} pre-trains the {', '.join(s.targets)} target(s) only (its time budget); "
                              f"--preset small runs every target")
        if target == "supervised":  # the from-scratch recipe on the pre-training images (train/ and val/)
            epochs = s.supervised_epochs
            return Run(deps=deps, argv=self.command(
                "cls", "--cfg", self.CONFIGS["cls-scratch"], "--dataset", "imagenet",
                "--data-root", os.path.join(self.data, "pretrain"), "--output-dir", self.out(f"pretrain-{size}-supervised"),
                "--resume", "auto", *cls_schedule(epochs), f"seed={self.data_seed}",
                f"batch_size={min(s.cls_batch, s.pretrain_images)}", *self.loading))
        extra = []
        if target == "dvae_token":
            extra, deps = [f"tokenizer={os.path.join(self.out('dvae'), 'dvae.pth')}"], ("toy_data", "dvae")
        return Run(deps=deps, argv=self.command(
            "pretrain", "--cfg", self.CONFIGS["pretrain"], "--data", os.path.join(self.data, "pretrain"),
            "--output-dir", self.out(f"pretrain-{size}-{target}"), "--resume", "auto", f"target={target}",
            f"epochs={s.pretrain_epochs}", f"warmup_epochs={max(1, s.pretrain_epochs // 10)}",
            f"vis_every={s.pretrain_epochs}",
            f"batch_size={min(s.pretrain_batch, s.pretrain_images)}", f"seed={self.data_seed}", *extra))

    def cls(self, dataset: str, size: str, source: str, seed: int) -> Run:
        s = self.scale
        epochs = s.scratch_epochs if source == "scratch" else s.cls_epochs if dataset == "imagenet" else s.table6_epochs
        argv = self.command("cls", "--cfg", self.CONFIGS["cls-scratch" if source == "scratch" else "cls"],
                    "--dataset", dataset, "--data-root", os.path.join(self.data, "cls", dataset),
                    "--output-dir", self.out(f"cls-{dataset}-{size}-{source}-seed{seed}"), "--resume", "auto",
                    *cls_schedule(epochs), f"seed={seed}", f"results_csv={self.csv('cls')}",
                    f"batch_size={min(s.cls_batch, s.cls_images[0])}", *self.loading)
        deps: tuple[str, ...] = ("toy_data",)
        if source != "scratch":
            init, run = self.checkpoint(source, size)
            argv += ["--init", init]
            deps += (run,)
        return Run(argv=argv, deps=deps, **self.recorded("cls"))

    def dense_source(self, source: str) -> None:
        if source not in self.scale.dense_sources:
            raise Unavailable(f"preset {self.name} runs detection and segmentation from {' and '.join(self.scale.dense_sources)} "
                              f"only (its time budget); --preset small runs them from every target")

    def det(self, size: str, source: str, seed: int) -> Run:
        self.dense_source(source)
        init, run = self.checkpoint(source, size)
        n, coco = self.scale.det_iters, os.path.join(self.data, "coco")
        # the recipe's steps at 89% and 96%, kept distinct and inside the schedule for very short runs
        first = max(1, int(n * 0.89))
        second = max(first + 1, int(n * 0.96))
        return Run(deps=("toy_data", run), **self.recorded("det"), argv=self.command(
            "det", "--cfg", self.CONFIGS["det"], "--init", init,
            "--output-dir", self.out(f"det-{size}-{source}-seed{seed}"), "--resume", "--results-csv", self.csv("det"),
            "--dataset", f"toy_coco_train={coco}/annotations/instances_train.json:{coco}/train",
            "--dataset", f"toy_coco_val={coco}/annotations/instances_val.json:{coco}/val",
            f"train.max_iter={n}", f"train.eval_period={n}",
            f"train.checkpointer.period={max(1, n // 2)}", f"lr_multiplier.scheduler.num_updates={max(n, second + 1)}",
            f"lr_multiplier.scheduler.milestones=[{first},{second}]",
            f"lr_multiplier.warmup_length={min(0.25, 25 / n)}", f"train.seed={seed}"))

    def seg(self, size: str, source: str, seed: int) -> Run:
        self.dense_source(source)
        init, run = self.checkpoint(source, size)
        n, warmup = self.scale.seg_iters, max(1, self.scale.seg_iters // 10)
        schedule = [dict(type="LinearLR", start_factor=1e-6, by_epoch=False, begin=0, end=warmup),
                    dict(type="PolyLR", power=1.0, eta_min=0.0, by_epoch=False, begin=warmup, end=n)]
        return Run(deps=("toy_data", run), **self.recorded("seg"), argv=self.command(
            "seg", "--cfg", self.CONFIGS["seg"], "--init", init,
            "--data-root", os.path.join(self.data, "ade", "ADEChallengeData2016"),
            "--work-dir", self.out(f"seg-{size}-{source}-seed{seed}"), "--resume", "auto", "--results-csv",
            self.csv("seg"), f"train_cfg.max_iters={n}", f"train_cfg.val_interval={n}", f"param_scheduler={schedule}",
            f"default_hooks.checkpoint.interval={max(1, n // 2)}", f"randomness.seed={seed}"))


class GpuPreset(CpuPreset):
    """gpu / gpu-smoke: the CPU presets' graph of generated data on one GPU, each run through the launcher
    a GPU user starts it with: torchrun (one process, NCCL) for pre-training, classification and
    UperNet (mmengine's `pytorch` launcher, AMP), Detectron2's launch for Mask R-CNN (AMP as its config
    says); the encoder of GPU_CONFIGS (ViT-S width, 8 blocks, 8 px patches, 64 px). gpu-smoke is the same
    for a few iterations, on whatever device there is: on a CPU the same launchers with gloo and fp32."""

    sizes = {"B": "small"}
    CONFIGS = GPU_CONFIGS
    ENCODER = "a ViT-S-width, 8-block, 8 px-patch ViT at 64 px"
    loading = ("num_workers=2",)

    def __init__(self, name: str, out: str, args: argparse.Namespace) -> None:
        super().__init__(name, out, args)
        import torch

        self.cuda = torch.cuda.is_available()

    def command(self, kind: str, *args: object) -> list[str]:
        script = tool_path(TOOLS[kind].script)
        if kind == "dvae":  # one process, on the GPU if there is one
            return [sys.executable, script, *map(str, args), "--num-workers", "4"]
        if kind == "det":  # Detectron2's launch: --num-gpus processes
            return [sys.executable, script, *map(str, args), "--num-gpus", "1"]
        # --standalone: a free port of its own, so that runs going at once do not meet
        torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "1", script]
        if kind == "seg":
            return [*torchrun, *map(str, args), "--launcher", "pytorch", *(["--amp"] if self.cuda else [])]
        return [*torchrun, *map(str, args)]


class PaperPreset(Preset):
    """The real datasets under --data-root and the paper's recipes, on GPUs (torchrun / Detectron2's
    launch); the same command on every machine. The configs (under configs/) per model size:"""

    sizes = {"B": "B", "L": "L", "H": "H", "H448": "H448"}
    PRETRAIN = {"B": "mae_vit_base", "L": "mae_vit_large", "H": "mae_vit_huge"}
    FINETUNE = {"B": "finetune_vit_b", "L": "finetune_vit_l", "H": "finetune_vit_h", "H448": "finetune_vit_h_448"}
    SCRATCH = {"B": "scratch_vit_b"}
    DET = {"B": "mask_rcnn_vit_b", "L": "mask_rcnn_vit_l"}
    SEG = {"B": "upernet_vit_b", "L": "upernet_vit_l"}

    def __init__(self, name: str, out: str, args: argparse.Namespace) -> None:
        super().__init__(name, out, args)
        if not args.data_root:
            raise SystemExit("error: --preset paper needs --data-root (holding imagenet/, coco/, ADEChallengeData2016/, "
                             "inat2017/, inat2018/, inat2019/, places205/, places365/)")
        self.root = os.path.abspath(args.data_root)

    def torchrun(self, script: str, *args: object) -> list[str]:
        """The tool under torchrun on every machine; with --submit, the tool alone (its SLURM job's tasks
        are its processes, common.slurm)."""
        a = self.args
        if a.submit:
            return [script, *map(str, args)]
        return ["torchrun", f"--nnodes={a.nnodes}", f"--node_rank={a.node_rank}", f"--nproc_per_node={a.nproc_per_node}",
                f"--master_addr={a.master_addr}", f"--master_port={a.master_port}",
                tool_path(script), *map(str, args)]

    def pretrain(self, size: str, target: str) -> Run:
        if size not in self.PRETRAIN:
            raise Unavailable(f"no pre-training config for ViT-{size}")
        extra = []
        if target == "dvae_token":
            if not self.args.dalle_encoder:
                raise Unavailable("the dVAE-token target needs DALL-E's encoder weights (--dalle-encoder encoder.pkl)")
            extra = [f"tokenizer={os.path.abspath(self.args.dalle_encoder)}"]
        return Run(argv=self.torchrun(
            TOOLS["pretrain"].script, "--cfg", f"pretrain/{self.PRETRAIN[size]}.py", "--data",
            os.path.join(self.root, "imagenet", "train"), "--output-dir", self.out(f"pretrain-{size}-{target}"),
            "--resume", "auto", f"target={target}", *extra))

    def cls(self, dataset: str, size: str, source: str, seed: int) -> Run:
        recipes = self.SCRATCH if source == "scratch" else self.FINETUNE
        if size not in recipes:
            raise Unavailable(f"no {'from-scratch' if source == 'scratch' else 'fine-tuning'} recipe for ViT-{size} "
                              f"in configs/cls/ (the paper's is not verified here)")
        argv = self.torchrun(TOOLS["cls"].script, "--cfg", f"cls/{recipes[size]}.py", "--dataset", dataset,
                             "--data-root", os.path.join(self.root, dataset), "--output-dir",
                             self.out(f"cls-{dataset}-{size}-{source}-seed{seed}"), "--resume", "auto", f"seed={seed}",
                             f"results_csv={self.csv('cls')}")
        deps: tuple[str, ...] = ()
        if source != "scratch":
            init, run = self.checkpoint(source, "H" if size == "H448" else size)
            argv += ["--init", init]
            deps = (run,)
        return Run(argv=argv, deps=deps, **self.recorded("cls"))

    def det(self, size: str, source: str, seed: int) -> Run:
        if size not in self.DET:
            raise Unavailable(f"no Mask R-CNN config for ViT-{size}")
        init, run = self.checkpoint(source, size)
        a = self.args
        argv = ["--cfg", f"det/{self.DET[size]}.py", "--init", init, "--data-root", self.root, "--output-dir",
                self.out(f"det-{size}-{source}-seed{seed}"), "--resume", "--results-csv", self.csv("det")]
        if a.submit:  # its job's tasks are its processes (common.slurm adds Detectron2's launch flags)
            return Run(deps=(run,), **self.recorded("det"), argv=[TOOLS["det"].script, *argv, f"train.seed={seed}"])
        return Run(deps=(run,), **self.recorded("det"), argv=[
            "python", tool_path(TOOLS["det"].script), *argv, "--num-gpus", str(a.nproc_per_node), "--num-machines",
            str(a.nnodes), "--machine-rank", str(a.node_rank), "--dist-url", f"tcp://{a.master_addr}:{a.master_port}",
            f"train.seed={seed}"])

    def seg(self, size: str, source: str, seed: int) -> Run:
        if size not in self.SEG:
            raise Unavailable(f"no UperNet config for ViT-{size}")
        init, run = self.checkpoint(source, size)
        return Run(deps=(run,), **self.recorded("seg"), argv=self.torchrun(
            TOOLS["seg"].script, "--cfg", f"seg/{self.SEG[size]}.py", "--init", init,
            "--data-root", os.path.join(self.root, "ADEChallengeData2016"), "--work-dir",
            self.out(f"seg-{size}-{source}-seed{seed}"), "--resume", "auto", "--results-csv", self.csv("seg"),
            f"randomness.seed={seed}"))


class AblationPreset(CpuPreset):
    """ablations / ablations-smoke: Table 1, Figure 5 and Figure 9 at the scale of tiny / smoke. Each
    pre-training changes SETTINGS of configs/pretrain/mae_vit_tiny_cpu.py's default (normalised pixels,
    75% random masking, a 2-block 128-d decoder, no mask token in the encoder, random-size crops), and
    each transfer is on the ImageNet-layout set: fine-tuning (CpuPreset.cls), linear probing or partial
    fine-tuning of the last K blocks (PROTOCOLS), for the scale's fine-tuning epochs."""

    # a run name's SETTING (a pattern) -> the tools/pretrain.py override it stands for ({} is the matched value)
    SETTINGS = {r"mask(0\.\d+)": "mask_ratio={}", r"dec(\d+)": "model_overrides.decoder_depth={}",
                r"dim(\d+)": "model_overrides.decoder_embed_dim={}",
                "enctoken()": "model_overrides.encoder_mask_token=True",
                "aug_(none|crop_fixed|crop_rand|crop_rand_jitter)": "augmentation={}",
                "(random|block|grid)": "mask_sampling={}"}
    # a transfer's PROTOCOL -> its config: lin, or partialK (the last K blocks tuned: tools/train_cls.py's blocks)
    PROTOCOLS = {"lin": "cls/linprobe_tiny_cpu.py", "partial": "cls/partial_tiny_cpu.py"}

    def pretrain(self, size: str, target: str, *settings: str) -> Run:
        run = super().pretrain(size, target)
        if not settings:
            return run
        return self.variant(run, "-".join(("pretrain", size, target, *settings)), map(self.setting, settings))

    def setting(self, name: str) -> str:
        for pattern, override in self.SETTINGS.items():
            if match := re.fullmatch(pattern, name):
                return override.format(match[1])
        raise ValueError(f"pre-training setting {name!r}: expected one of {', '.join(self.SETTINGS)}")

    def cls(self, dataset: str, size: str, *parts: Any) -> Run:
        """parts: SOURCE's parts (TARGET[-SETTING...]), the PROTOCOL unless it is fine-tuning, the seed."""
        *names, seed = parts
        protocol = re.fullmatch(r"lin|partial([\d.]+)", names[-1])
        if protocol is None:
            return super().cls(dataset, size, "-".join(names), seed)
        run = super().cls(dataset, size, "-".join(names[:-1]), seed)
        # the linear probe warms up 10 of every 90 epochs, as configs/cls/linprobe_vit_b.py
        extra = [f"blocks={protocol[1]}"] if protocol[1] else [f"warmup_epochs={max(1, self.scale.cls_epochs // 9)}"]
        return self.variant(run, f"cls-{dataset}-{size}-{'-'.join(names)}-seed{seed}", extra,
                            self.PROTOCOLS["partial" if protocol[1] else "lin"])

    def variant(self, run: Run, name: str, overrides: Iterable[str], config: str | None = None) -> Run:
        """A parent recipe's run as the run `name`: its own output folder, another config if given, and
        overrides appended (the tools apply key=value overrides in order: the last one counts)."""
        assert run.argv is not None, "only a tool's run has variants"
        argv = list(run.argv)
        argv[argv.index("--output-dir") + 1] = self.out(name)
        if config:
            argv[argv.index("--cfg") + 1] = config
        return replace(run, argv=argv + list(overrides))


PRESETS = {"tiny": CpuPreset, "small": CpuPreset, "smoke": CpuPreset, "gpu": GpuPreset, "gpu-smoke": GpuPreset,
           "paper": PaperPreset,
           "ablations": AblationPreset, "ablations-smoke": AblationPreset}
