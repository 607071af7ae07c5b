#!/usr/bin/env python
"""MAE pre-training.

  python tools/pretrain.py --cfg pretrain/mae_vit_base.py --data /data/imagenet --output-dir runs/mae_b
  torchrun --nproc_per_node 8 tools/pretrain.py --cfg pretrain/mae_vit_large.py --data ... [key=value ...]
  python tools/pretrain.py --cfg ... --output-dir runs/mae_b --resume auto   # continue where it stopped
"""
import argparse
import sys

import _bootstrap  # noqa: F401

from pretrain.config import load_config


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
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
    from backbones import CheckpointError
    from pretrain.engine import Trainer

    try:  # set-up errors (config, data, checkpoint) are the user's to fix: a message, not a traceback
        trainer = Trainer(load_config(_bootstrap.resolve_config_path(args.cfg), overrides), resume=args.resume)
    except (FileNotFoundError, ValueError, CheckpointError) as e:
        parser.exit(2, f"error: {e}\n")
    trainer.train()


if __name__ == "__main__":
    sys.exit(main())
