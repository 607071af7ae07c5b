#!/usr/bin/env python
"""Classification transfer: fine-tuning, linear probing, partial fine-tuning, training from scratch.

  .venv/bin/python tools/train_cls.py --cfg cls/finetune_vit_b.py --init mae_pretrain_vit_base.pth \
      --dataset imagenet --data-root /data/imagenet --output-dir runs/ft_b
  torchrun --nproc_per_node 8 tools/train_cls.py --cfg cls/linprobe_vit_b.py --init ... --dataset inat2018 --data-root ...
  .venv/bin/python tools/train_cls.py --cfg cls/partial_vit_b.py --init ... --mode partial --blocks 4 ...
  .venv/bin/python tools/train_cls.py --cfg cls/finetune_vit_b.py --eval-only runs/ft_b/checkpoint-last.pth ...

Each evaluation at the end of a run (or --eval-only) appends a row to --results-csv, by default
results.csv in the run's folder (the output dir, or the evaluated checkpoint's folder).
"""
import os
import sys

from common import cli


def main(argv: list[str]) -> None:
    parser = cli.training_parser(__doc__)
    parser.add_argument("--dataset", help="imagenet, inat2017, inat2018, inat2019, places205 or places365")
    parser.add_argument("--data-root")
    parser.add_argument("--mode", choices=("finetune", "linprobe", "partial", "scratch"))
    parser.add_argument("--blocks", type=float, help="partial: blocks to tune (0.5 = the MLP half of the last)")
    args = parser.parse_intermixed_args(argv)
    overrides = [f"{key}={value!r}" for key, value in (("init", args.init), ("dataset", args.dataset),
                                                       ("data_root", args.data_root), ("mode", args.mode),
                                                       ("blocks", args.blocks), ("output_dir", args.output_dir),
                                                       ("results_csv", args.results_csv))
                 if value is not None]
    # --eval-only CKPT evaluates CKPT; a bare one the --resume checkpoint, else the output dir's last one
    resume = args.eval_only if args.eval_only not in (None, "auto") else (args.resume or args.eval_only)

    from cls_transfer.config import load_cls_config
    from cls_transfer.engine import ClsTrainer

    with cli.setup_checks():
        cfg = load_cls_config(cli.resolve_config_path(args.cfg), overrides + list(args.overrides))
        trainer = ClsTrainer(cfg, resume=resume, eval_only=args.eval_only is not None)
    if args.eval_only is not None:
        top1, top5 = trainer.evaluate()
        trainer.record_result(top1, top5, trainer.start_epoch, run_dir=os.path.dirname(os.path.abspath(trainer.checkpoint_path)))
        print(f"top-1 {top1:.3f} top-5 {top5:.3f}")
        return
    cli.ResumePoint.find = lambda: trainer.last_path if os.path.isfile(trainer.last_path) else None
    trainer.train()
    print(f"outputs in {os.path.abspath(cfg.output_dir)} (checkpoint-last.pth, log.csv, tensorboard/)")


if __name__ == "__main__":
    sys.exit(cli.run(main))
