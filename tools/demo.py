#!/usr/bin/env python
"""`make demo`: a small end-to-end MAE pre-training on this machine's CPU.

Generates procedural scenes (tools/make_toy_data.py), pre-trains the tiny MAE of
configs/pretrain/mae_vit_tiny_cpu.py on them, and writes a checkpoint, the loss log (CSV,
TensorBoard, a plot) and Figure-2-style reconstructions into --out.
"""
import argparse
import csv
import os

import _bootstrap  # noqa: F401
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from pretrain.config import load_config  # noqa: E402
from pretrain.engine import Trainer  # noqa: E402
from tools.make_toy_data import write_image_folder  # noqa: E402


def plot_loss(log_csv, path):
    with open(log_csv) as f:
        rows = list(csv.DictReader(f))
    fig, ax = plt.subplots(figsize=(5, 3.2))
    ax.plot([int(r["epoch"]) for r in rows], [float(r["loss"]) for r in rows], marker="o", ms=3)
    ax.set_xlabel("epoch")
    ax.set_ylabel("reconstruction loss (masked patches)")
    ax.set_title("MAE pre-training loss")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="demo_output")
    parser.add_argument("--num-images", type=int, default=1024)
    parser.add_argument("--epochs", type=int, default=None, help="default: the config's")
    parser.add_argument("overrides", nargs="*", help="config overrides key=value")
    args = parser.parse_args(argv)

    data = os.path.join(args.out, "data")
    if not os.path.isdir(os.path.join(data, "train")):
        print(f"[demo] generating {args.num_images} images in {data}")
        write_image_folder(data, args.num_images, size=80, seed=0)
    overrides = [f"data={data}", f"output_dir={os.path.join(args.out, 'pretrain')}", *args.overrides]
    if args.epochs:
        overrides.append(f"epochs={args.epochs}")
    cfg = load_config(os.path.join(_bootstrap.ROOT, "configs/pretrain/mae_vit_tiny_cpu.py"), overrides)
    Trainer(cfg, resume="auto").train()

    plot = os.path.join(cfg.output_dir, "loss.png")
    plot_loss(os.path.join(cfg.output_dir, "log.csv"), plot)
    figures = sorted(os.listdir(os.path.join(cfg.output_dir, "figures")))
    print("\n[demo] done:")
    print(f"  checkpoint       {os.path.join(cfg.output_dir, 'checkpoint-last.pth')}")
    print(f"  loss log         {os.path.join(cfg.output_dir, 'log.csv')} (TensorBoard: {os.path.join(cfg.output_dir, 'tensorboard')})")
    print(f"  loss plot        {plot}")
    print(f"  reconstructions  {os.path.join(cfg.output_dir, 'figures', figures[-1])} (and {len(figures) - 1} earlier)")


if __name__ == "__main__":
    main()
