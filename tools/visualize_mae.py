#!/usr/bin/env python
"""Figure-2-style reconstructions (masked / reconstruction / original) from an MAE checkpoint.

  python tools/visualize_mae.py runs/mae_b/checkpoint-last.pth img1.jpg img2.jpg --out recon.png
  python tools/visualize_mae.py mae_visualize_vit_large.pth img.jpg --model mae_vit_large_patch16 --target pixel

A checkpoint of tools/pretrain.py carries its config; an official checkpoint needs --model (and
--target norm_pixel for models trained with norm_pix_loss). It must include the decoder.
"""
import argparse

import _bootstrap  # noqa: F401
import torch

from backbones import load_file, load_state_dict, state_dict_of
from pretrain import build_mae
from pretrain.config import build_model
from pretrain.data import BadImageError, eval_transform, read_image
from pretrain.visualize import save_reconstruction_figure


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkpoint")
    parser.add_argument("images", nargs="+")
    parser.add_argument("--out", default="reconstruction.png")
    parser.add_argument("--model", help="MAE model name, for checkpoints without a config (official ones)")
    parser.add_argument("--target", default="pixel", choices=("pixel", "norm_pixel"), help="with --model")
    parser.add_argument("--input-size", type=int, default=224, help="with --model")
    parser.add_argument("--mask-ratio", type=float, default=0.75)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    ckpt = load_file(args.checkpoint)
    if args.model:
        model, size = build_mae(args.model, img_size=args.input_size, target=args.target), args.input_size
    elif isinstance(ckpt, dict) and "config" in ckpt:
        model, size = build_model(ckpt["config"]), ckpt["config"]["input_size"]
    else:
        parser.error(f"{args.checkpoint} has no config (not written by tools/pretrain.py): pass --model")
    report = load_state_dict(model, state_dict_of(ckpt), source=args.checkpoint)
    print(f"{args.checkpoint}: {report.summary()}")
    transform = eval_transform(size)
    try:
        imgs = torch.stack([transform(read_image(p)) for p in args.images])
    except BadImageError as e:
        parser.error(str(e))
    path = save_reconstruction_figure(model, imgs, args.out, args.mask_ratio, args.seed,
                                      title=f"{args.checkpoint} (mask {args.mask_ratio:.0%})")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
