#!/usr/bin/env python
"""Detection and instance segmentation: Mask R-CNN with the MAE ViT in Detectron2 (LazyConfig).

  python tools/train_det.py --cfg det/mask_rcnn_vit_b.py --init mae_pretrain_vit_base.pth --num-gpus 8 \
      --data-root /data   # COCO 2017 as /data/coco/{train2017,val2017,annotations/instances_*2017.json}
  python tools/train_det.py --cfg det/mask_rcnn_vit_l.py --init ... --num-gpus 8 --num-machines 4 \
      --machine-rank $RANK --dist-url tcp://$HEAD:29500
  python tools/train_det.py --cfg ... --output-dir runs/det_b --resume        # continue the last checkpoint
  python tools/train_det.py --cfg ... --eval-only runs/det_b/model_final.pth
  python tools/train_det.py --cfg det/mask_rcnn_vit_tiny.py \
      --dataset toy_coco_train=data/toy/coco/annotations/instances_train.json:data/toy/coco/train \
      --dataset toy_coco_val=data/toy/coco/annotations/instances_val.json:data/toy/coco/val

Every finished evaluation appends a row to results/runs/det.csv (--results-csv).
"""
import argparse
import logging
import math
import os
import sys

import _bootstrap
from backbones.training import append_row

COCO_LAYOUT = "DATA_ROOT/coco/{train2017,val2017}/*.jpg and DATA_ROOT/coco/annotations/instances_{train,val}2017.json"


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cfg", required=True, help="LazyConfig file (path or name under configs/)")
    parser.add_argument("--init", help="MAE checkpoint for the backbone (tools/pretrain.py's or an official one)")
    parser.add_argument("--output-dir")
    parser.add_argument("--resume", action="store_true", help="continue from the output dir's last checkpoint")
    parser.add_argument("--eval-only", metavar="CHECKPOINT",
                        help="evaluate a checkpoint and record it; 'init' evaluates the model as --init leaves it")
    parser.add_argument("--data-root", help="folder holding coco/ (sets $DETECTRON2_DATASETS)")
    parser.add_argument("--dataset", action="append", default=[], metavar="NAME=JSON:IMAGES",
                        help="register a COCO-format json + image folder under NAME (repeatable)")
    parser.add_argument("--num-gpus", type=int, default=1)
    parser.add_argument("--num-machines", type=int, default=1)
    parser.add_argument("--machine-rank", type=int, default=0)
    parser.add_argument("--dist-url", default="auto")
    parser.add_argument("--results-csv", default=os.path.join("results", "runs", "det.csv"))
    parser.add_argument("overrides", nargs="*", help="LazyConfig overrides: dotted.key=value")
    return parser, parser.parse_intermixed_args(argv)


def register_datasets(specs):
    from detectron2.data import DatasetCatalog
    from detectron2.data.datasets import register_coco_instances

    for spec in specs:
        name, _, paths = spec.partition("=")
        json_file, _, image_root = paths.partition(":")
        for path in (json_file, image_root):
            if not os.path.exists(path):
                raise FileNotFoundError(f"--dataset {name}: {path} does not exist (expected NAME=COCO_JSON:IMAGE_FOLDER)")
        if name not in DatasetCatalog.list():
            register_coco_instances(name, {}, json_file, image_root)


def check_dataset(name):
    from detectron2.data import MetadataCatalog

    meta = MetadataCatalog.get(name)
    for path in (meta.get("json_file"), meta.get("image_root")):
        if path and not os.path.exists(path):
            raise FileNotFoundError(f"dataset {name}: {path} does not exist; expected {COCO_LAYOUT} "
                                    f"(--data-root or $DETECTRON2_DATASETS), or register one with --dataset")


def vit_node(cfg):
    backbone = cfg.model.backbone
    return backbone.vit if "vit" in backbone else backbone.net


def evaluate(cfg, model):
    from detectron2.config import instantiate
    from detectron2.evaluation import COCOEvaluator, inference_on_dataset

    name = cfg.dataloader.test.dataset.names
    evaluator = COCOEvaluator(name, output_dir=os.path.join(cfg.train.output_dir, "inference"))
    return inference_on_dataset(model, instantiate(cfg.dataloader.test), evaluator)


def _ap(results, task):
    """COCOEvaluator gives NaN (or leaves the task out) when the model predicted nothing: AP 0."""
    ap = results.get(task, {}).get("AP", 0.0)
    return f"{0.0 if math.isnan(ap) else ap:.3f}"


def record(path, cfg, args, results, iteration):
    row = dict(pretrain_checkpoint=vit_node(cfg).get("init_checkpoint") or "", backbone=os.path.basename(args.cfg),
               adapter="simple" if "net" in cfg.model.backbone else "groups",
               ap_box=_ap(results, 'bbox'), ap_mask=_ap(results, 'segm'), iteration=iteration,
               checkpoint=args.eval_only or "", run_dir=os.path.abspath(cfg.train.output_dir))
    append_row(path, row)
    logging.getLogger("detectron2").info(f"box AP {row['ap_box']}, mask AP {row['ap_mask']} -> {path}")


def main(args):
    import torch
    from detectron2.checkpoint import DetectionCheckpointer
    from detectron2.config import LazyConfig, instantiate
    from detectron2.engine import AMPTrainer, SimpleTrainer, create_ddp_model, default_setup, default_writers, hooks
    from detectron2.utils import comm

    import det  # noqa: F401  (registers build_mae_vit_backbone for yacs configs)

    register_datasets(args.dataset)
    cfg = LazyConfig.apply_overrides(LazyConfig.load(_bootstrap.resolve_config_path(args.cfg)), args.overrides)
    if args.init:
        vit_node(cfg).init_checkpoint = args.init
    cfg.train.output_dir = args.output_dir or os.path.join("runs", "det", os.path.splitext(os.path.basename(args.cfg))[0])
    cfg.train.device = "cuda" if torch.cuda.is_available() else "cpu"
    default_setup(cfg, args)
    for name in (cfg.dataloader.train.dataset.names, cfg.dataloader.test.dataset.names):
        check_dataset(name)

    model = instantiate(cfg.model).to(cfg.train.device)
    logger = logging.getLogger("detectron2")
    if vit_node(cfg).get("init_checkpoint"):
        logger.info(f"backbone init from {vit_node(cfg).init_checkpoint}")
    if args.eval_only:
        checkpoint = {} if args.eval_only == "init" else DetectionCheckpointer(model).load(args.eval_only)
        results = evaluate(cfg, model)
        if comm.is_main_process():
            # Detectron2 stores the index of the last iteration run: iterations done = index + 1
            record(args.results_csv, cfg, args, results, checkpoint.get("iteration", -1) + 1)
        return results

    cfg.optimizer.params.model = model
    optimizer = instantiate(cfg.optimizer)
    loader = instantiate(cfg.dataloader.train)
    model = create_ddp_model(model, **cfg.train.ddp)
    # Detectron2's AMPTrainer needs CUDA; on the CPU the step runs in fp32.
    amp = cfg.train.amp.enabled and cfg.train.device == "cuda"
    trainer = (AMPTrainer if amp else SimpleTrainer)(model, loader, optimizer)
    checkpointer = DetectionCheckpointer(model, cfg.train.output_dir, trainer=trainer)
    final = {}

    def eval_and_record():
        final["results"] = evaluate(cfg, model)
        if comm.is_main_process():
            record(args.results_csv, cfg, args, final["results"], min(trainer.iter + 1, cfg.train.max_iter))
        return final["results"]

    trainer.register_hooks([
        hooks.IterationTimer(),
        hooks.LRScheduler(scheduler=instantiate(cfg.lr_multiplier)),
        hooks.PeriodicCheckpointer(checkpointer, **cfg.train.checkpointer) if comm.is_main_process() else None,
        hooks.EvalHook(cfg.train.eval_period, eval_and_record),
        hooks.PeriodicWriter(default_writers(cfg.train.output_dir, cfg.train.max_iter), period=cfg.train.log_period)
        if comm.is_main_process() else None,
    ])
    checkpointer.resume_or_load("", resume=args.resume)
    start_iter = trainer.iter + 1 if args.resume and checkpointer.has_checkpoint() else 0
    trainer.train(start_iter, cfg.train.max_iter)
    return final.get("results")


if __name__ == "__main__":
    parser, args = parse_args()
    if args.data_root:  # read by detectron2's builtin dataset registration at import
        os.environ["DETECTRON2_DATASETS"] = args.data_root
    from detectron2.engine import launch

    try:
        launch(main, args.num_gpus, num_machines=args.num_machines, machine_rank=args.machine_rank,
               dist_url=args.dist_url, args=(args,))
    except FileNotFoundError as e:
        parser.exit(2, f"error: {e}\n")
    sys.exit(0)
