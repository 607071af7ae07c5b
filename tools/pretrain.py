#!/usr/bin/env python
"""MAE pre-training.

  .venv/bin/python tools/pretrain.py --cfg pretrain/mae_vit_base.py --data /data/imagenet --output-dir runs/mae_b
  torchrun --nproc_per_node 8 tools/pretrain.py --cfg pretrain/mae_vit_large.py --data ... [key=value ...]
  .venv/bin/python tools/pretrain.py --cfg ... --output-dir runs/mae_b --resume auto   # continue where it stopped
"""
import os
import sys

import _cli


def main(argv: list[str]) -> None:
    parser = _cli.ArgumentParser(description=__doc__)
    parser.add_argument("--cfg", required=True, help="config file (path or name under configs/)")
    parser.add_argument("--data", help="image folder or file list (overrides the config's data)")
    parser.add_argument("--output-dir", help="where checkpoints, logs and figures go")
    parser.add_argument("--resume", help="a checkpoint, or 'auto' for OUTPUT_DIR/checkpoint-last.pth if present")
    parser.add_argument("overrides", nargs="*", help="config overrides: key=value (e.g. epochs=10 model_overrides.decoder_depth=1)")
    args = parser.parse_intermixed_args(argv)
    overrides = list(args.overrides)
    if args.data:
        overrides.append(f"data={args.data}")
    if args.output_dir:
        overrides.append(f"output_dir={args.output_dir}")
    from common.config import load_config
    from pretrain.config import PretrainConfig
    from pretrain.engine import Trainer

    with _cli.setup_checks():
        trainer = Trainer(load_config(_cli.resolve_config_path(args.cfg), PretrainConfig, overrides), resume=args.resume)
    _cli.ResumePoint.find = lambda: trainer.last_path if os.path.isfile(trainer.last_path) else None
    trainer.train()
    print(f"outputs in {os.path.abspath(trainer.cfg.output_dir)} (checkpoint-last.pth, log.csv, summary.json, "
          f"tensorboard/, figures/)")


if __name__ == "__main__":
    sys.exit(_cli.run(main))
