#!/usr/bin/env python
"""Semantic segmentation: UperNet with the MAE ViT in MMSegmentation (mmengine's Runner).

  python tools/train_seg.py --cfg seg/upernet_vit_b.py --init runs/mae_b/checkpoint-last.pth \
      --data-root /data/ade/ADEChallengeData2016 --work-dir runs/seg_b
  torchrun --nproc_per_node 8 tools/train_seg.py --cfg seg/upernet_vit_l.py --init ... --amp
  torchrun --nnodes 2 --node_rank $RANK --nproc_per_node 8 --master_addr $HEAD --master_port 29500 \
      tools/train_seg.py --cfg seg/upernet_vit_l.py --init ... --amp
  python tools/train_seg.py --cfg seg/upernet_vit_b.py --work-dir runs/seg_b --resume auto
  python tools/train_seg.py --cfg seg/upernet_vit_b.py --eval-only runs/seg_b/iter_160000.pth

Every finished run (after its final evaluation) and every --eval-only appends a row to
results/runs/seg.csv (--results-csv).
"""
import argparse
import ast
import os
import sys

import _bootstrap
from backbones.training import append_row

ADE_LAYOUT = "DATA_ROOT/images/{training,validation}/*.jpg and DATA_ROOT/annotations/{training,validation}/*.png " \
             "(ADEChallengeData2016)"


def parse_overrides(items, parser):
    out = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep:
            parser.error(f"override {item!r} is not key=value")
        try:
            out[key] = ast.literal_eval(raw)
        except (ValueError, SyntaxError):
            out[key] = raw
    return out


def use_plain_batchnorm(node):
    """SyncBN needs a process group: single-process runs use BN (the same layer, not synchronised)."""
    if isinstance(node, dict):
        if node.get("type") == "SyncBN":
            node["type"] = "BN"
        for value in node.values():
            use_plain_batchnorm(value)
    elif isinstance(node, list):
        for value in node:
            use_plain_batchnorm(value)


def check_data(cfg):
    for loader in ("train_dataloader", "val_dataloader"):
        dataset = cfg[loader]["dataset"]
        for folder in dataset["data_prefix"].values():
            path = os.path.join(dataset["data_root"], folder)
            if not os.path.isdir(path):
                raise FileNotFoundError(f"segmentation data folder {path} is missing; expected {ADE_LAYOUT}")


def record(path, cfg, args, metrics, iteration):
    row = dict(pretrain_checkpoint=cfg.model.backbone.get("init_checkpoint") or "", backbone=os.path.basename(args.cfg),
               mIoU=f"{metrics['mIoU']:.3f}", mAcc=f"{metrics['mAcc']:.3f}", aAcc=f"{metrics['aAcc']:.3f}",
               iteration=iteration, checkpoint=args.eval_only or "", run_dir=os.path.abspath(cfg.work_dir))
    append_row(path, row)
    print(f"mIoU {metrics['mIoU']:.2f}, mAcc {metrics['mAcc']:.2f}, aAcc {metrics['aAcc']:.2f} -> {path}")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cfg", required=True, help="mmengine config (path or name under configs/)")
    parser.add_argument("--init", help="MAE checkpoint for the backbone (tools/pretrain.py's or an official one)")
    parser.add_argument("--data-root", help="ADEChallengeData2016 folder (or one in the same layout)")
    parser.add_argument("--work-dir")
    parser.add_argument("--resume", help="'auto' (the work dir's last checkpoint) or a checkpoint path")
    parser.add_argument("--amp", action="store_true", help="mixed precision (AmpOptimWrapper; GPUs)")
    parser.add_argument("--eval-only", metavar="CHECKPOINT", help="evaluate a checkpoint and record it")
    parser.add_argument("--results-csv", default=os.path.join("results", "runs", "seg.csv"))
    parser.add_argument("overrides", nargs="*", help="config overrides: dotted.key=value")
    args = parser.parse_intermixed_args(argv)

    import torch
    from mmengine.config import Config
    from mmengine.runner import Runner

    try:
        cfg = Config.fromfile(_bootstrap.resolve_config_path(args.cfg))
    except FileNotFoundError as e:
        parser.exit(2, f"error: {e}\n")
    cfg.merge_from_dict(parse_overrides(args.overrides, parser))
    if args.init:
        cfg.model.backbone.init_checkpoint = args.init
    if args.data_root:
        for loader in ("train_dataloader", "val_dataloader", "test_dataloader"):
            cfg[loader]["dataset"]["data_root"] = args.data_root
    cfg.work_dir = args.work_dir or cfg.get("work_dir") or os.path.join("runs", "seg", os.path.splitext(os.path.basename(args.cfg))[0])
    distributed = int(os.environ.get("WORLD_SIZE", 1)) > 1
    cfg.launcher = "pytorch" if distributed else "none"
    if not distributed:
        use_plain_batchnorm(cfg.model)
    if not torch.cuda.is_available():
        cfg.env_cfg.dist_cfg = dict(backend="gloo")
    if args.amp:
        if not torch.cuda.is_available():
            parser.exit(2, "error: --amp uses mmengine's AmpOptimWrapper, which needs a GPU\n")
        cfg.optim_wrapper.type, cfg.optim_wrapper.loss_scale = "AmpOptimWrapper", "dynamic"
    if args.resume:
        cfg.resume = True
        cfg.load_from = None if args.resume == "auto" else args.resume
    if args.eval_only:
        cfg.load_from = args.eval_only
    try:
        check_data(cfg)
    except FileNotFoundError as e:
        parser.exit(2, f"error: {e}\n")

    runner = Runner.from_cfg(cfg)
    if args.eval_only:
        metrics = runner.test()
    else:
        runner.train()
        metrics = runner.val()
    if runner.rank == 0:
        iteration = torch.load(args.eval_only, map_location="cpu", weights_only=True)["meta"]["iter"] if args.eval_only else runner.iter
        record(args.results_csv, cfg, args, metrics, iteration)


if __name__ == "__main__":
    sys.exit(main())
