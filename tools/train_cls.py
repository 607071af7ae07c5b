#!/usr/bin/env python
"""Classification transfer: fine-tuning, linear probing, partial fine-tuning, training from scratch.

  python tools/train_cls.py --cfg cls/finetune_vit_b.py --init mae_pretrain_vit_base.pth \
      --dataset imagenet --data-root /data/imagenet --output-dir runs/ft_b
  torchrun --nproc_per_node 8 tools/train_cls.py --cfg cls/linprobe_vit_b.py --init ... --dataset inat2018 --data-root ...
  python tools/train_cls.py --cfg cls/partial_vit_b.py --init ... --mode partial --blocks 4 ...
  python tools/train_cls.py --cfg cls/finetune_vit_b.py --resume runs/ft_b/checkpoint-last.pth --eval-only ...

Each evaluation at the end of a run (or --eval-only) appends a row to results_csv
(results/runs/cls.csv by default).
"""
import argparse
import sys

import _bootstrap  # noqa: F401

from cls_transfer.config import load_cls_config


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cfg", required=True, help="config file (path or name under configs/)")
    parser.add_argument("--init", help="MAE checkpoint to start from (tools/pretrain.py's or an official one)")
    parser.add_argument("--dataset", help="imagenet, inat2017, inat2018, inat2019, places205 or places365")
    parser.add_argument("--data-root")
    parser.add_argument("--mode", choices=("finetune", "linprobe", "partial", "scratch"))
    parser.add_argument("--blocks", type=float, help="partial: blocks to tune (0.5 = the MLP half of the last)")
    parser.add_argument("--output-dir")
    parser.add_argument("--resume", help="a checkpoint, or 'auto' for OUTPUT_DIR/checkpoint-last.pth if present")
    parser.add_argument("--eval-only", action="store_true", help="evaluate the --resume checkpoint and record it")
    parser.add_argument("overrides", nargs="*", help="config overrides: key=value")
    args = parser.parse_intermixed_args(argv)
    overrides = [f"{key}={value!r}" for key, value in (("init", args.init), ("dataset", args.dataset),
                                                       ("data_root", args.data_root), ("mode", args.mode),
                                                       ("blocks", args.blocks), ("output_dir", args.output_dir))
                 if value is not None]
    if args.eval_only and not args.resume:
        parser.error("--eval-only needs --resume CHECKPOINT")

    from backbones import CheckpointError
    from cls_transfer.engine import ClsTrainer

    try:
        cfg = load_cls_config(_bootstrap.resolve_config_path(args.cfg), overrides + list(args.overrides))
        trainer = ClsTrainer(cfg, resume=args.resume)
    except (FileNotFoundError, ValueError, CheckpointError) as e:
        parser.exit(2, f"error: {e}\n")
    if args.eval_only:
        top1, top5 = trainer.evaluate()
        trainer.record_result(top1, top5, trainer.start_epoch)
        print(f"top-1 {top1:.3f} top-5 {top5:.3f}")
    else:
        trainer.train()


if __name__ == "__main__":
    sys.exit(main())
