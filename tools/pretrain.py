#!/usr/bin/env python
"""MAE pre-training.

  .venv/bin/python tools/pretrain.py --cfg pretrain/mae_vit_base.py --data /data/imagenet --output-dir runs/mae_b
  torchrun --nproc_per_node 8 tools/pretrain.py --cfg pretrain/mae_vit_large.py --data ... [key=value ...]
  .venv/bin/python tools/pretrain.py --cfg ... --output-dir runs/mae_b --resume auto   # continue where it stopped
"""
import os
import sys

from common import cli

REFUSED = {"--init": "pre-training starts from random weights (continue a run with --resume)",
           "--eval-only": "pre-training is judged by its transfers (tools/train_cls.py --eval-only) and its "
                          "reconstruction figures (tools/visualize_mae.py)",
           "--results-csv": "pre-training writes log.csv and summary.json in OUTPUT_DIR"}


def main(argv: list[str]) -> None:
    parser = cli.training_parser(__doc__, refused=REFUSED)
    parser.add_argument("--data", help="image folder or file list (overrides the config's data)")
    args = parser.parse_intermixed_args(argv)
    overrides = list(args.overrides)
    if args.data:
        overrides.append(f"data={args.data}")
    if args.output_dir:
        overrides.append(f"output_dir={args.output_dir}")
    from common.config import load_config
    from pretrain.config import PretrainConfig
    from pretrain.engine import Trainer

    with cli.setup_checks():
        trainer = Trainer(load_config(cli.resolve_config_path(args.cfg), PretrainConfig, overrides), resume=args.resume)
    cli.ResumePoint.find = lambda: trainer.last_path if os.path.isfile(trainer.last_path) else None
    trainer.train()
    print(f"outputs in {os.path.abspath(trainer.cfg.output_dir)} (checkpoint-last.pth, log.csv, summary.json, "
          f"tensorboard/, figures/)")


if __name__ == "__main__":
    sys.exit(cli.run(main))
