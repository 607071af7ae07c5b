#!/usr/bin/env python
"""Figure-2-style reconstructions (masked / reconstruction / original) from an MAE checkpoint.

  .venv/bin/python tools/visualize_mae.py runs/mae_b/checkpoint-last.pth img1.jpg img2.jpg --out recon.png
  .venv/bin/python tools/visualize_mae.py mae_visualize_vit_large.pth img.jpg --model mae_vit_large_patch16 --target pixel

A checkpoint of tools/pretrain.py carries its config; an official checkpoint needs --model (and
--target norm_pixel for models trained with norm_pix_loss). It must include the decoder. A norm_pixel
model's figure shows its prediction per-patch normalised (it cannot know a hidden patch's mean and
std) beside that target; a pixel-target model's shows a reconstruction in colour, as Figure 2 does.
"""
import sys

from common import cli


def main(argv: list[str]) -> None:
    parser = cli.ArgumentParser(description=__doc__)
    parser.add_argument("checkpoint")
    parser.add_argument("images", nargs="+")
    parser.add_argument("--out", default="reconstruction.png")
    parser.add_argument("--model", help="MAE model name, for checkpoints without a config (official ones)")
    parser.add_argument("--target", default="pixel", choices=("pixel", "norm_pixel"), help="with --model")
    parser.add_argument("--input-size", type=int, default=224, help="with --model")
    parser.add_argument("--mask-ratio", type=float, default=0.75)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    import torch

    from backbones import load_state_dict, state_dict_of
    from common.checkpoint_files import load_file
    from common.images import read_image
    from pretrain import build_mae
    from pretrain.data import eval_transform
    from pretrain.config import build_model
    from pretrain.visualize import save_reconstruction_figure

    ckpt = load_file(args.checkpoint)
    sd = state_dict_of(ckpt)
    if not any(k.startswith("decoder_") for k in sd):
        kind = "a classification checkpoint (tools/train_cls.py)" if isinstance(ckpt, dict) and "classes" in ckpt \
            else "an encoder without the MAE decoder"
        raise cli.UserError(f"{args.checkpoint} is {kind}: reconstructions need a pre-training checkpoint with its "
                             f"decoder (tools/pretrain.py's, or an official mae_visualize_*.pth)")
    with cli.setup_checks():
        if args.model:
            model, size = build_mae(args.model, img_size=args.input_size, target=args.target), args.input_size
        elif isinstance(ckpt, dict) and "config" in ckpt:
            model, size = build_model(ckpt["config"]), ckpt["config"]["input_size"]
        else:
            raise cli.UserError(f"{args.checkpoint} has no config (not written by tools/pretrain.py): pass --model")
    report = load_state_dict(model, sd, source=args.checkpoint)
    print(f"{args.checkpoint}: {report.summary()}")
    transform = eval_transform(size)
    imgs = torch.stack([transform(read_image(p)) for p in args.images])
    path = save_reconstruction_figure(model, imgs, args.out, args.mask_ratio, args.seed,
                                      title=f"{args.checkpoint} (mask {args.mask_ratio:.0%})")
    print(f"wrote {path}")


if __name__ == "__main__":
    sys.exit(cli.run(main))
