"""A Detectron2 Mask R-CNN run (tools/train_det.py): the LazyConfig with its overrides and the checks a
user's input needs, training with checkpoints, evaluation with its result row, and the processes
Detectron2's launch starts."""
import argparse
import contextlib
import inspect
import logging
import math
import os
import sys
from collections.abc import Mapping
from typing import Any

import torch
from detectron2.checkpoint import DetectionCheckpointer
from detectron2.config import LazyConfig, instantiate
from detectron2.engine import AMPTrainer, SimpleTrainer, default_setup, default_writers, hooks, launch
from detectron2.evaluation import COCOEvaluator, DatasetEvaluator, inference_on_dataset
from detectron2.utils import comm
from detectron2.utils.registry import locate
from omegaconf import DictConfig
from torch import nn
from torch.multiprocessing import ProcessExitedException

from backbones import check_same_model
from common.checkpoint_files import CheckpointError, load_file
from common.cli import (EXIT_STOPPED, ResumePoint, check_override_keys, init_for_results, require_start,
                        resolve_config_path)
from common.config import split_override
from common.errors import UserError
from common.results import default_path, record_result
from common.run_lock import owned_output_dir
from common.signals import Stopped, StopRequest
from det.backbone import ViTBackbone  # importing det also registers build_mae_vit_backbone for yacs configs
from det.checkpoint import AtomicCheckpointer
from det.data import register_datasets, set_num_classes
from det.distributed import check_processes, distributed_model, share_cores
from det.hooks import StopAtSignal


def vit_node(cfg: DictConfig) -> DictConfig:
    """The ViTBackbone's node: `vit` of the A.3 FPN adapter, `net` of ViTDet's simple pyramid."""
    backbone = cfg.model.backbone
    return backbone.vit if "vit" in backbone else backbone.net


def set_init(cfg: DictConfig, args: argparse.Namespace) -> str:
    """--init, or Detectron2's train.init_checkpoint (ViTDet configs set it), loaded by the backbone's
    strict MAE mapping; Detectron2's own loader would load it by name, silently matching nothing."""
    given = {source: path for source, path in (("--init", args.init), ("train.init_checkpoint", cfg.train.get("init_checkpoint")),
                                               ("model.backbone's init_checkpoint", vit_node(cfg).get("init_checkpoint")))
             if path}
    if len(set(given.values())) > 1:
        raise UserError("two initial checkpoints given: " + ", ".join(f"{k}={v}" for k, v in given.items())
                        + "; keep one (--init)")
    init = next(iter(given.values()), "")
    vit_node(cfg).init_checkpoint = "" if init == "none" else init
    cfg.train.init_checkpoint = ""
    return init


def lazy_target(node: Any) -> Any:
    """What a LazyConfig node builds (its `_target_`), for checking override keys."""
    target = node.get("_target_") if hasattr(node, "get") else None
    return locate(target) if isinstance(target, str) else target


def build_config(args: argparse.Namespace, num_classes: int | None = None) -> DictConfig:
    """The config with its overrides, and every check a user's input needs. num_classes: as the
    launching process found it in the data (its workers do not read the COCO json again)."""
    register_datasets(args.dataset)
    cfg = LazyConfig.load(resolve_config_path(args.cfg))
    check_override_keys(cfg, [split_override(item)[0] for item in args.overrides], lazy_target)
    cfg = LazyConfig.apply_overrides(cfg, args.overrides)
    init = set_init(cfg, args)
    cfg.train.output_dir = args.output_dir or os.path.join("runs", "det", os.path.splitext(os.path.basename(args.cfg))[0])
    last = os.path.join(cfg.train.output_dir, "last_checkpoint")  # Detectron2's pointer to the latest one
    if args.eval_only == "auto":  # a bare --eval-only: the output dir's last checkpoint
        if not os.path.isfile(last):
            raise UserError(f"--eval-only found no checkpoint to evaluate ({last} does not exist): pass "
                            f"--eval-only CHECKPOINT")
        with open(last) as f:
            args.eval_only = os.path.join(cfg.train.output_dir, f.read().strip())
    resumable = args.resume and (args.resume != "auto" or os.path.isfile(last))
    if args.eval_only in (None, "init"):
        require_start(init, bool(resumable), args.resume, cfg.train.output_dir)
    if num_classes is None:
        set_num_classes(cfg)
    else:
        cfg.model.roi_heads.num_classes = num_classes
    return cfg


def evaluator(cfg: DictConfig) -> DatasetEvaluator:
    """The config's dataloader.evaluator (as Detectron2's lazyconfig_train_net.py builds it), writing
    into OUTPUT_DIR/inference unless it names its own folder; COCOEvaluator on the test dataset for a
    config without one."""
    output_dir = os.path.join(cfg.train.output_dir, "inference")
    node = cfg.dataloader.get("evaluator")
    if node is None:
        return COCOEvaluator(cfg.dataloader.test.dataset.names, output_dir=output_dir)
    if "output_dir" in inspect.signature(lazy_target(node)).parameters and node.get("output_dir") is None:
        node.output_dir = output_dir  # in place: the node's "${..test.dataset.names}" resolves in the config
    return instantiate(node)


def evaluate(cfg: DictConfig, model: nn.Module) -> dict[str, Any]:
    return inference_on_dataset(model, instantiate(cfg.dataloader.test), evaluator(cfg))


def _ap(results: Mapping[str, Any], task: str) -> float:
    """COCOEvaluator gives NaN (or leaves the task out) when the model predicted nothing: AP 0."""
    ap = float(results.get(task, {}).get("AP", 0.0))
    return 0.0 if math.isnan(ap) else ap


def results_csv(cfg: DictConfig, args: argparse.Namespace) -> str:
    return args.results_csv or default_path(cfg.train.output_dir)


def record(cfg: DictConfig, args: argparse.Namespace, results: Mapping[str, Any], iteration: int) -> None:
    path, row = record_result(
        "det", cfg.train.output_dir, results_csv(cfg, args),
        pretrain_checkpoint=init_for_results(vit_node(cfg).get("init_checkpoint") or args.init, bool(args.eval_only)),
        backbone=os.path.basename(args.cfg),
        adapter="simple" if "net" in cfg.model.backbone else "groups", ap_box=_ap(results, "bbox"),
        ap_mask=_ap(results, "segm"), iteration=iteration, checkpoint=args.eval_only or "")
    logging.getLogger("detectron2").info(f"box AP {row['ap_box']}, mask AP {row['ap_mask']} -> {path}")


def checked_checkpoint(model: nn.Module, path: str) -> str:
    """A checkpoint to resume or evaluate must be this model's: Detectron2 would load a mismatched
    one partially, with warnings only."""
    ckpt = load_file(path)
    if not isinstance(ckpt, dict) or not isinstance(ckpt.get("model"), dict):
        raise CheckpointError(f"{path} is not a Detectron2 checkpoint (no 'model'); an MAE checkpoint goes to --init")
    check_same_model(model.state_dict(), ckpt["model"], path)
    return path


def train(args: argparse.Namespace, num_classes: int | None) -> dict[str, Any] | None:
    """One process's part of the run (launch calls it in each): evaluate a checkpoint, or train with
    checkpoints and periodic evaluation; rank 0 records each result."""
    cfg = build_config(args, num_classes)  # again: a spawned worker process starts with an empty dataset catalog
    cfg.train.device = "cuda" if torch.cuda.is_available() else "cpu"
    if cfg.train.device == "cpu":
        share_cores()
    default_setup(cfg, args)
    logger = logging.getLogger("detectron2")
    model = instantiate(cfg.model).to(cfg.train.device)
    vit = next(m for m in model.modules() if isinstance(m, ViTBackbone))
    if vit.init_report is not None:
        logger.info(f"backbone init from {vit.init_checkpoint}: {vit.init_report.summary()}")
    if args.eval_only:
        checkpoint: dict[str, Any] = {}
        if args.eval_only != "init":
            checkpoint = DetectionCheckpointer(model).load(checked_checkpoint(model, args.eval_only))
        results = evaluate(cfg, model)
        if comm.is_main_process():
            # Detectron2 stores the index of the last iteration run: iterations done = index + 1
            record(cfg, args, results, checkpoint.get("iteration", -1) + 1)
        return results

    cfg.optimizer.params.model = model
    optimizer = instantiate(cfg.optimizer)
    loader = instantiate(cfg.dataloader.train)
    ddp_model = distributed_model(model, cfg.train.ddp)
    # Detectron2's AMPTrainer needs CUDA; on the CPU the step runs in fp32.
    amp = cfg.train.amp.enabled and cfg.train.device == "cuda"
    trainer = (AMPTrainer if amp else SimpleTrainer)(ddp_model, loader, optimizer)
    checkpointer = AtomicCheckpointer(ddp_model, cfg.train.output_dir, trainer=trainer)
    ResumePoint.find = lambda: checkpointer.get_checkpoint_file() if checkpointer.has_checkpoint() else None
    final: dict[str, Any] = {}

    def eval_and_record() -> dict[str, Any]:
        final["results"] = evaluate(cfg, model)
        if comm.is_main_process():
            record(cfg, args, final["results"], min(trainer.iter + 1, cfg.train.max_iter))
        return final["results"]

    trainer.register_hooks([
        hooks.IterationTimer(),
        hooks.LRScheduler(scheduler=instantiate(cfg.lr_multiplier)),
        hooks.PeriodicCheckpointer(checkpointer, **cfg.train.checkpointer) if comm.is_main_process() else None,
        hooks.EvalHook(cfg.train.eval_period, eval_and_record),
        hooks.PeriodicWriter(default_writers(cfg.train.output_dir, cfg.train.max_iter), period=cfg.train.log_period)
        if comm.is_main_process() else None,
        StopAtSignal(checkpointer),
    ])
    start_iter = 0
    resume = checkpointer.get_checkpoint_file() if args.resume == "auto" and checkpointer.has_checkpoint() else args.resume
    if resume and resume != "auto":
        checkpointer.load(checked_checkpoint(model, resume))  # model, optimizer, scheduler and iteration
        start_iter = trainer.iter + 1
    trainer.train(start_iter, cfg.train.max_iter)
    if comm.is_main_process():
        logger.info(f"outputs in {os.path.abspath(cfg.train.output_dir)} (model_final.pth, metrics.json, TensorBoard "
                    f"events, inference/); result rows -> {results_csv(cfg, args)}")
    return final.get("results")


def train_in_worker(args: argparse.Namespace, num_classes: int | None) -> dict[str, Any] | None:
    """train() in a spawned worker: a stop ends it with the stop's exit code (rank 0 saying why), which
    the launching process passes on; torch's spawn wrapper would print Stopped as a crash."""
    try:
        return train(args, num_classes)
    except Stopped as stop:
        if str(stop):
            print(f"error: {stop}", file=sys.stderr, flush=True)
        sys.exit(EXIT_STOPPED)


def main(args: argparse.Namespace) -> None:
    """tools/train_det.py after parsing (and after $DETECTRON2_DATASETS, which importing det reads):
    every check before any process starts, then Detectron2's launch."""
    cfg = build_config(args)  # every check a user's input needs, before any process starts
    check_processes(args.num_gpus, args.num_machines, None if args.eval_only else cfg.dataloader.train.total_batch_size)
    if args.num_gpus * args.num_machines > 1 and vit_node(cfg).get("init_checkpoint"):
        instantiate(vit_node(cfg))  # loads --init through the MAE mapping here, not first in every worker
    # this process outlives its workers: it holds the output folder's lock (the first machine's, for a training
    # run), and a stop signal (SLURM sends it to every process) waits for its workers' checkpoint
    trains = not args.eval_only and args.machine_rank == 0
    spawned = args.num_gpus * args.num_machines > 1
    with owned_output_dir(cfg.train.output_dir) if trains else contextlib.nullcontext(), \
            StopRequest() if spawned else contextlib.nullcontext():
        try:
            launch(train_in_worker if spawned else train, args.num_gpus, num_machines=args.num_machines,
                   machine_rank=args.machine_rank, dist_url=args.dist_url, args=(args, cfg.model.roi_heads.num_classes))
        except ProcessExitedException as e:
            if e.exit_code != EXIT_STOPPED:
                raise
            raise SystemExit(EXIT_STOPPED) from None  # the worker of rank 0 said where it stopped
