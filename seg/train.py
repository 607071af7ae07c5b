"""A run of tools/train_seg.py: its command line applied to the mmengine config (overrides checked
against what the nodes build, --init, --data-root, --resume, --amp), the data and checkpoints checked
before mmengine's Runner starts, then training or evaluation and the result row."""
import argparse
import contextlib
import os
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import mmseg.registry
import torch
from mmengine.config import Config, DictAction
from mmengine.registry import Registry
from mmengine.runner import Runner

from backbones import check_same_model
from common.checkpoint_files import CheckpointError, load_file
from common.cli import NO_INIT, ResumePoint, check_override_keys, init_for_results, require_start, resolve_config_path
from common.config import literal, split_override
from common.errors import UserError
from common.results import default_path, record_result
from common.run_lock import owned_output_dir
from common.signals import StopRequest

from . import distributed
from .checkpoint_safety import mmengine_checkpoint_globals
from .data_checks import files_under, image_suffix
from .hooks import FinalValidation, StopAtSignal

ADE_LAYOUT = "DATA_ROOT/images/{training,validation}/*.jpg (or .png, ...: one extension per folder) and " \
             "DATA_ROOT/annotations/{training,validation}/*.png (ADEChallengeData2016)"


def parse_overrides(items: Sequence[str]) -> dict[str, Any]:
    """dotted.key=value -> {key: value}: a Python literal (dict(...) included), else read as mmengine's
    --cfg-options reads it (DictAction: a,b and [a,b] are lists, true is True), text with no commas or
    brackets as it is (a path keeps its spaces)."""
    out: dict[str, Any] = {}
    for item in items:
        key, raw = split_override(item)
        try:
            out[key] = literal(raw)
            continue
        except (ValueError, SyntaxError):
            pass
        if not re.search(r"\bdict\(|\{", raw):  # DictAction would keep a dict as text, or split it at its commas
            try:
                out[key] = (DictAction._parse_iterable(raw) if raw.startswith(("[", "(")) or "," in raw
                            else DictAction._parse_int_float_bool(raw))
                continue
            except (AssertionError, RecursionError):  # how DictAction fails: unbalanced brackets, calls
                pass
        raise UserError(f"override {key}={raw} cannot be read: write a Python literal, its strings quoted, as in "
                        f"\"model.backbone.init_cfg=dict(type='Pretrained', checkpoint='PATH')\"")
    return out


def registered_type(cfg: Config) -> Callable[[Any], Any]:
    """What an mmengine config node builds (its `type`, looked up in mmseg's registries); the
    Runner itself for the top level."""
    def builds(node: Any) -> Any:
        if node is cfg:
            return Runner
        kind = node.get("type") if hasattr(node, "get") else None
        if not isinstance(kind, str):
            return kind
        registries = [r for r in vars(mmseg.registry).values() if isinstance(r, Registry)]
        return next((found for r in registries if (found := r.get(kind)) is not None), None)

    return builds


def check_data(cfg: Config, loaders: Sequence[str] = ("train_dataloader", "val_dataloader")) -> None:
    """Folders present, the images' extension (the datasets' img_suffix), and every image with its
    annotation (mmseg pairs them by name and would fail at the image's first batch)."""
    for loader in loaders:
        dataset = cfg[loader]["dataset"]
        prefix = dataset["data_prefix"]
        folders = {k: os.path.join(dataset["data_root"], v) for k, v in prefix.items()}
        for path in folders.values():
            if not os.path.isdir(path):
                raise FileNotFoundError(f"segmentation data folder {path} is missing; expected {ADE_LAYOUT}")
        img_suffix = dataset["img_suffix"] = image_suffix(folders["img_path"], ADE_LAYOUT)
        seg_suffix = dataset.get("seg_map_suffix", ".png")
        images = [f[:-len(img_suffix)] for f in files_under(folders["img_path"]) if f.endswith(img_suffix)]
        maps = {f[:-len(seg_suffix)] for f in files_under(folders["seg_map_path"]) if f.endswith(seg_suffix)}
        missing = sorted(set(images) - maps)
        if missing:
            raise FileNotFoundError(f"{len(missing)} images in {folders['img_path']} have no annotation "
                                    f"{folders['seg_map_path']}/NAME{seg_suffix}, e.g. {missing[0]}{img_suffix}")


def check_annotations_when_read(cfg: Config) -> None:
    """CheckSegMap right after every LoadAnnotations: each annotation is checked as it is read."""
    num_classes = cfg.model.decode_head.num_classes
    for loader in ("train_dataloader", "val_dataloader", "test_dataloader"):
        pipeline = cfg[loader]["dataset"]["pipeline"]
        if any(step["type"] == "CheckSegMap" for step in pipeline):  # loaders may share one pipeline
            continue
        for i, step in enumerate(list(pipeline)):
            if step["type"] == "LoadAnnotations":
                pipeline.insert(i + 1, dict(type="CheckSegMap", num_classes=num_classes,
                                            reduce_zero_label=step.get("reduce_zero_label", False)))
                break


def init_checkpoint(cfg: Config, args: argparse.Namespace) -> str | None:
    backbone = cfg.model.backbone
    init_cfg = backbone.get("init_cfg") or {}
    return args.init or backbone.get("init_checkpoint") or (init_cfg.get("type") == "Pretrained" and init_cfg.get("checkpoint")) or None


def last_checkpoint(work_dir: str) -> str | None:
    """mmengine's pointer to the latest checkpoint (work_dir/last_checkpoint), when it exists."""
    pointer = os.path.join(work_dir, "last_checkpoint")
    if not os.path.isfile(pointer):
        return None
    with open(pointer) as f:
        path = f.read().strip()
    return path if os.path.isfile(path) else None


def check_checkpoint(runner: Runner, path: str) -> dict[str, Any]:
    """mmengine would load another model's checkpoint partially, with warnings only."""
    with mmengine_checkpoint_globals():  # its message hub's history buffers and numpy data
        ckpt = load_file(path)
    if not isinstance(ckpt, dict) or not isinstance(ckpt.get("state_dict"), dict) or "meta" not in ckpt:
        raise CheckpointError(f"{path} is not a checkpoint of tools/train_seg.py (mmengine's); an MAE checkpoint goes "
                              f"to --init")
    check_same_model(getattr(runner.model, "module", runner.model).state_dict(), ckpt["state_dict"], path)
    return ckpt


def results_csv(cfg: Config, args: argparse.Namespace) -> str:
    return args.results_csv or default_path(cfg.work_dir)


def record(cfg: Config, args: argparse.Namespace, metrics: Mapping[str, float], iteration: int) -> None:
    path, _ = record_result(
        "seg", cfg.work_dir, results_csv(cfg, args),
        pretrain_checkpoint=init_for_results(init_checkpoint(cfg, args), bool(args.eval_only)),
        backbone=os.path.basename(args.cfg), mIoU=float(metrics["mIoU"]), mAcc=float(metrics["mAcc"]),
        aAcc=float(metrics["aAcc"]), iteration=iteration, checkpoint=args.eval_only or "")
    print(f"mIoU {metrics['mIoU']:.2f}, mAcc {metrics['mAcc']:.2f}, aAcc {metrics['aAcc']:.2f} -> {path}")


def apply_amp(cfg: Config) -> None:
    """What --amp sets (tools/bench_gpu.py measures the same): mmengine's AmpOptimWrapper, fp16 with a
    dynamic loss scale."""
    if not torch.cuda.is_available():
        raise UserError("--amp uses mmengine's AmpOptimWrapper, which needs a GPU")
    cfg.optim_wrapper.type, cfg.optim_wrapper.loss_scale = "AmpOptimWrapper", "dynamic"


def run_config(args: argparse.Namespace) -> Config:
    """The config file with the command line's settings, its data and annotations checked."""
    cfg = Config.fromfile(resolve_config_path(args.cfg))
    overrides = parse_overrides(args.overrides + args.cfg_options)
    check_override_keys(cfg, overrides, registered_type(cfg))
    cfg.merge_from_dict(overrides)
    init = init_checkpoint(cfg, args)
    if args.init:
        cfg.model.backbone.init_checkpoint = None if args.init == NO_INIT else args.init
    if args.data_root:
        for loader in ("train_dataloader", "val_dataloader", "test_dataloader"):
            cfg[loader]["dataset"]["data_root"] = args.data_root
    cfg.work_dir = args.output_dir or cfg.get("work_dir") or os.path.join("runs", "seg", os.path.splitext(os.path.basename(args.cfg))[0])
    resume = last_checkpoint(cfg.work_dir) if args.resume == "auto" else args.resume
    if args.eval_only == "auto":  # a bare --eval-only: the work dir's last checkpoint
        args.eval_only = last_checkpoint(cfg.work_dir)
        if not args.eval_only:
            raise UserError(f"--eval-only found no checkpoint to evaluate (no {os.path.join(cfg.work_dir, 'last_checkpoint')}): "
                            f"pass --eval-only CHECKPOINT")
    if not args.eval_only:
        require_start(init, bool(resume), args.resume, cfg.work_dir)
    if args.amp:
        apply_amp(cfg)
    if resume:
        cfg.resume, cfg.load_from = True, resume
    if args.eval_only:
        cfg.load_from = args.eval_only
    check_data(cfg, ("test_dataloader",) if args.eval_only else ("train_dataloader", "val_dataloader"))
    check_annotations_when_read(cfg)
    return cfg


def main(args: argparse.Namespace) -> None:
    """Trains or evaluates as tools/train_seg.py's parsed command line asks."""
    cfg = run_config(args)
    distributed.set_up(cfg, args.launcher)  # joins the launcher's processes: RANK is set from here on
    # a training run owns its folder (rank 0 holds the lock), from before the Runner writes its logs there
    trains = not args.eval_only and int(os.environ.get("RANK", 0)) == 0
    with owned_output_dir(cfg.work_dir) if trains else contextlib.nullcontext():
        run(Runner.from_cfg(cfg), cfg, args)


def run(runner: Runner, cfg: Config, args: argparse.Namespace) -> None:
    """Trains (then validates, if the loop did not at its last iteration) or evaluates, and records."""
    if cfg.load_from:
        checkpoint = check_checkpoint(runner, cfg.load_from)
    if args.eval_only:
        metrics = runner.test()
        iteration = checkpoint["meta"]["iter"]
    else:
        final = FinalValidation()
        runner.register_hook(final, priority="LOWEST")
        ResumePoint.find = lambda: last_checkpoint(cfg.work_dir)
        with StopRequest() as request:  # before the Runner starts its data workers (see StopAtSignal)
            runner.register_hook(StopAtSignal(request))
            runner.train()
        # the training loop validates at its last iteration; a run with nothing left to train has not
        metrics = final.metrics if final.iteration == runner.iter else runner.val()
        iteration = runner.iter
    if runner.rank == 0:
        record(cfg, args, metrics, iteration)
        if not args.eval_only:
            print(f"outputs in {os.path.abspath(cfg.work_dir)} (iter_N.pth, logs, vis_data/); result rows -> "
                  f"{results_csv(cfg, args)}")
