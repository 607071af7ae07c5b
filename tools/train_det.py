#!/usr/bin/env python
"""Detection and instance segmentation: Mask R-CNN with the MAE ViT in Detectron2 (LazyConfig).

  .venv/bin/python tools/train_det.py --cfg det/mask_rcnn_vit_b.py --init mae_pretrain_vit_base.pth --num-gpus 8 \
      --data-root /data   # COCO 2017 as /data/coco/{train2017,val2017,annotations/instances_*2017.json}
  .venv/bin/python tools/train_det.py --cfg det/mask_rcnn_vit_l.py --init ... --num-gpus 8 --num-machines 4 \
      --machine-rank $RANK --dist-url tcp://$HEAD:29500
  .venv/bin/python tools/train_det.py --cfg ... --output-dir runs/det_b --resume auto   # continue the last checkpoint
  .venv/bin/python tools/train_det.py --cfg ... --num-processes 2   # without GPUs: 2 CPU processes (gloo)
  .venv/bin/python tools/train_det.py --cfg ... --eval-only runs/det_b/model_final.pth
  .venv/bin/python tools/train_det.py --cfg det/mask_rcnn_vit_tiny.py \
      --dataset toy_coco_train=data/toy/coco/annotations/instances_train.json:data/toy/coco/train \
      --dataset toy_coco_val=data/toy/coco/annotations/instances_val.json:data/toy/coco/val

The number of classes is the datasets' (their categories must agree). Every finished evaluation
appends a row to --results-csv (default: results.csv in the run's output dir).
"""
import contextlib
import json
import logging
import math
import os
import sys

import _cli

from common.results import default_path, record_result
from common.run_lock import owned_output_dir
from common.signals import Stopped, StopRequest

COCO_LAYOUT = "DATA_ROOT/coco/{train2017,val2017}/*.jpg and DATA_ROOT/coco/annotations/instances_{train,val}2017.json"


def parse_args(argv):
    parser = _cli.ArgumentParser(description=__doc__)
    parser.add_argument("--cfg", required=True, help="LazyConfig file (path or name under configs/)")
    parser.add_argument("--init", help="MAE checkpoint for the backbone (tools/pretrain.py's or an official one); "
                                       "'none' trains from random weights")
    parser.add_argument("--output-dir")
    parser.add_argument("--resume", nargs="?", const="auto", type=_cli.resume_value, metavar="auto|CHECKPOINT",
                        help="continue from the output dir's last checkpoint (auto, the default) or from CHECKPOINT")
    parser.add_argument("--eval-only", metavar="CHECKPOINT",
                        help="evaluate a checkpoint and record it; 'init' evaluates the model as --init leaves it")
    parser.add_argument("--data-root", help="folder holding coco/ (sets $DETECTRON2_DATASETS)")
    parser.add_argument("--dataset", action="append", default=[], metavar="NAME=JSON:IMAGES",
                        help="register a COCO-format json + image folder under NAME (repeatable)")
    parser.add_argument("--num-gpus", "--num-processes", dest="num_gpus", type=_cli.number_in("[1, inf)"), default=1,
                        help="processes per machine: one per GPU, or CPU processes (gloo) on a machine without CUDA")
    parser.add_argument("--num-machines", type=int, default=1)
    parser.add_argument("--machine-rank", type=int, default=0)
    parser.add_argument("--dist-url", default="auto")
    parser.add_argument("--results-csv", help="where result rows go (default: OUTPUT_DIR/results.csv)")
    parser.add_argument("overrides", nargs="*", help="LazyConfig overrides: dotted.key=value")
    return parser.parse_intermixed_args(argv)


def register_datasets(specs):
    from detectron2.data import DatasetCatalog
    from detectron2.data.datasets import register_coco_instances

    for spec in specs:
        name, _, paths = spec.partition("=")
        json_file, _, image_root = paths.partition(":")
        if not (name and json_file and image_root):
            raise _cli.UserError(f"--dataset {spec!r} is not NAME=COCO_JSON:IMAGE_FOLDER")
        for path in (json_file, image_root):
            if not os.path.exists(path):
                raise FileNotFoundError(f"--dataset {name}: {path} does not exist (expected NAME=COCO_JSON:IMAGE_FOLDER)")
        if name not in DatasetCatalog.list():
            register_coco_instances(name, {}, json_file, image_root)


def coco_categories(name, polygon_masks):
    """The (id, name) categories of a registered COCO-format dataset, after the checks Detectron2
    would otherwise fail on late (at the first batch, or in COCOEvaluator after the whole run)."""
    from detectron2.data import DatasetCatalog, MetadataCatalog

    if name not in DatasetCatalog.list():
        raise _cli.UserError(f"dataset {name!r} is not registered: register it with --dataset {name}=COCO_JSON:IMAGES, "
                             f"or use one of Detectron2's builtin names (e.g. coco_2017_train)")
    meta = MetadataCatalog.get(name)
    json_file = meta.get("json_file")
    for path in (json_file, meta.get("image_root")):
        if path and not os.path.exists(path):
            raise FileNotFoundError(f"dataset {name}: {path} does not exist; expected {COCO_LAYOUT} "
                                    f"(--data-root or $DETECTRON2_DATASETS), or register one with --dataset")
    if not json_file:
        raise _cli.UserError(f"dataset {name!r} has no COCO json (json_file) in its metadata; register a COCO-format "
                             f"dataset with --dataset NAME=COCO_JSON:IMAGES")
    try:
        with open(json_file) as f:
            data = json.load(f)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise _cli.UserError(f"dataset {name}: {json_file} is not valid JSON ({e})") from e
    for key in ("images", "annotations", "categories"):
        if not isinstance(data.get(key), list) or (key != "annotations" and not data[key]):
            raise _cli.UserError(f"dataset {name}: {json_file} has no {key!r} list; a COCO instances json needs "
                                 f"'images', 'annotations' and 'categories'")
    ids = {c["id"] for c in data["categories"]}
    for ann in data["annotations"]:
        if ann.get("category_id") not in ids:
            raise _cli.UserError(f"dataset {name}: {json_file} annotation {ann.get('id')} has category_id "
                                 f"{ann.get('category_id')}, which its 'categories' do not list")
        if polygon_masks and not ann.get("iscrowd", 0) and isinstance(ann.get("segmentation"), dict):
            raise _cli.UserError(f"dataset {name}: {json_file} annotation {ann.get('id')} (image {ann.get('image_id')}) "
                                 f"is an RLE mask with iscrowd=0, which the polygon mask format cannot read: convert "
                                 f"it to polygons, or add dataloader.train.mapper.instance_mask_format=bitmask")
    return sorted((c["id"], c["name"]) for c in data["categories"]), json_file


def set_num_classes(cfg):
    """The class count comes from the data; train and test datasets must have the same categories."""
    mapper = cfg.dataloader.train.mapper
    polygons = mapper.get("use_instance_mask", False) and mapper.get("instance_mask_format", "polygon") == "polygon"
    train_names, test_names = _names(cfg.dataloader.train.dataset.names), _names(cfg.dataloader.test.dataset.names)
    found = {name: coco_categories(name, polygons and name in train_names) for name in dict.fromkeys(train_names + test_names)}
    (first, (categories, first_json)), *others = found.items()
    for name, (other, json_file) in others:
        if other != categories:
            differ = sorted(set(categories) ^ set(other))[:4]
            raise _cli.UserError(f"datasets {first} ({first_json}, {len(categories)} categories) and {name} ({json_file}, "
                                 f"{len(other)} categories) have different categories, e.g. {differ}: train and "
                                 f"evaluate on datasets with the same 'categories'")
    if cfg.model.roi_heads.num_classes != len(categories):
        print(f"num_classes: {len(categories)}, the categories of dataset {first} (the config said "
              f"{cfg.model.roi_heads.num_classes})")
        cfg.model.roi_heads.num_classes = len(categories)


def _names(names):
    return [names] if isinstance(names, str) else list(names)


def vit_node(cfg):
    backbone = cfg.model.backbone
    return backbone.vit if "vit" in backbone else backbone.net


def set_init(cfg, args):
    """--init, or Detectron2's train.init_checkpoint (ViTDet configs set it), loaded by the backbone's
    strict MAE mapping; Detectron2's own loader would load it by name, silently matching nothing."""
    given = {source: path for source, path in (("--init", args.init), ("train.init_checkpoint", cfg.train.get("init_checkpoint")),
                                               ("model.backbone's init_checkpoint", vit_node(cfg).get("init_checkpoint")))
             if path}
    if len(set(given.values())) > 1:
        raise _cli.UserError("two initial checkpoints given: " + ", ".join(f"{k}={v}" for k, v in given.items())
                             + "; keep one (--init)")
    init = next(iter(given.values()), "")
    vit_node(cfg).init_checkpoint = "" if init == "none" else init
    cfg.train.init_checkpoint = ""
    return init


def lazy_target(node):
    """What a LazyConfig node builds (its `_target_`), for checking override keys."""
    from detectron2.utils.registry import locate

    target = node.get("_target_") if hasattr(node, "get") else None
    return locate(target) if isinstance(target, str) else target


def build_config(args, num_classes=None):
    """The config with its overrides, and every check a user's input needs. num_classes: as the
    launching process found it in the data (its workers do not read the COCO json again)."""
    from detectron2.config import LazyConfig

    register_datasets(args.dataset)
    cfg = LazyConfig.load(_cli.resolve_config_path(args.cfg))
    for item in args.overrides:
        if "=" not in item:
            raise _cli.UserError(f"override {item!r} is not dotted.key=value")
    _cli.check_override_keys(cfg, [item.partition("=")[0] for item in args.overrides], lazy_target)
    cfg = LazyConfig.apply_overrides(cfg, args.overrides)
    init = set_init(cfg, args)
    cfg.train.output_dir = args.output_dir or os.path.join("runs", "det", os.path.splitext(os.path.basename(args.cfg))[0])
    last = os.path.join(cfg.train.output_dir, "last_checkpoint")  # Detectron2's pointer to the latest one
    resumable = args.resume and (args.resume != "auto" or os.path.isfile(last))
    if not init and not resumable and args.eval_only in (None, "init"):
        found = f", and --resume auto found no checkpoint in {cfg.train.output_dir}" if args.resume == "auto" else ""
        raise _cli.UserError(f"no initial checkpoint was given{found}: pass --init CHECKPOINT (an MAE checkpoint), "
                             f"or --init none to train from random weights")
    if num_classes is None:
        set_num_classes(cfg)
    else:
        cfg.model.roi_heads.num_classes = num_classes
    return cfg


def evaluate(cfg, model):
    from detectron2.config import instantiate
    from detectron2.evaluation import COCOEvaluator, inference_on_dataset

    name = cfg.dataloader.test.dataset.names
    evaluator = COCOEvaluator(name, output_dir=os.path.join(cfg.train.output_dir, "inference"))
    return inference_on_dataset(model, instantiate(cfg.dataloader.test), evaluator)


def _ap(results, task):
    """COCOEvaluator gives NaN (or leaves the task out) when the model predicted nothing: AP 0."""
    ap = float(results.get(task, {}).get("AP", 0.0))
    return 0.0 if math.isnan(ap) else ap


def results_csv(cfg, args):
    return args.results_csv or default_path(cfg.train.output_dir)


def record(cfg, args, results, iteration):
    path, row = record_result(
        "det", cfg.train.output_dir, results_csv(cfg, args),
        pretrain_checkpoint=vit_node(cfg).get("init_checkpoint") or "", backbone=os.path.basename(args.cfg),
        adapter="simple" if "net" in cfg.model.backbone else "groups", ap_box=_ap(results, "bbox"),
        ap_mask=_ap(results, "segm"), iteration=iteration, checkpoint=args.eval_only or "")
    logging.getLogger("detectron2").info(f"box AP {row['ap_box']}, mask AP {row['ap_mask']} -> {path}")


def checked_checkpoint(model, path):
    """A checkpoint to resume or evaluate must be this model's: Detectron2 would load a mismatched
    one partially, with warnings only."""
    from backbones import check_same_model
    from common.checkpoint_files import CheckpointError, load_file

    ckpt = load_file(path)
    if not isinstance(ckpt, dict) or not isinstance(ckpt.get("model"), dict):
        raise CheckpointError(f"{path} is not a Detectron2 checkpoint (no 'model'); an MAE checkpoint goes to --init")
    check_same_model(model.state_dict(), ckpt["model"], path)
    return path


def train(args, num_classes):
    import torch
    from detectron2.checkpoint import DetectionCheckpointer
    from detectron2.config import instantiate
    from detectron2.engine import AMPTrainer, SimpleTrainer, default_setup, default_writers, hooks
    from detectron2.utils import comm

    from det.backbone import ViTBackbone  # importing det also registers build_mae_vit_backbone for yacs configs
    from det.checkpoint import AtomicCheckpointer
    from det.distributed import distributed_model, share_cores
    from det.hooks import StopAtSignal

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
        checkpoint = {}
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
    _cli.ResumePoint.find = lambda: checkpointer.get_checkpoint_file() if checkpointer.has_checkpoint() else None
    final = {}

    def eval_and_record():
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


def main(argv: list[str]) -> None:
    args = parse_args(argv)
    if args.data_root:  # read by detectron2's builtin dataset registration at import
        os.environ["DETECTRON2_DATASETS"] = args.data_root
    from detectron2.engine import launch
    from torch.multiprocessing import ProcessExitedException

    from det.distributed import check_processes

    cfg = build_config(args)  # every check a user's input needs, before any process starts
    check_processes(args.num_gpus, args.num_machines, None if args.eval_only else cfg.dataloader.train.total_batch_size)
    if args.num_gpus * args.num_machines > 1 and vit_node(cfg).get("init_checkpoint"):
        from detectron2.config import instantiate

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
            if e.exit_code != _cli.EXIT_STOPPED:
                raise
            raise SystemExit(_cli.EXIT_STOPPED) from None  # the worker of rank 0 said where it stopped


def train_in_worker(args, num_classes):
    """train() in a spawned worker: a stop ends it with the stop's exit code (rank 0 saying why), which
    the launching process passes on; torch's spawn wrapper would print Stopped as a crash."""
    try:
        return train(args, num_classes)
    except Stopped as stop:
        if str(stop):
            print(f"error: {stop}", file=sys.stderr, flush=True)
        sys.exit(_cli.EXIT_STOPPED)


if __name__ == "__main__":
    sys.exit(_cli.run(main))
