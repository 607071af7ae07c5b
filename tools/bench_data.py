#!/usr/bin/env python
"""Times the pre-training data loader (tools/pretrain.py's PretrainDataset + DataLoader) on
generated JPEGs: images per second in all and per worker process (one core each).

  python tools/bench_data.py                         # ImageNet-sized JPEGs (500x375), 1 worker
  python tools/bench_data.py --size 3000x2000        # camera-sized photos (draft-mode decoding)
  python tools/bench_data.py --workers 15 --images 3000
  python tools/bench_data.py --repo /path/to/other/checkout   # the same measurement of another version

The images are smooth colour fields with discs and grain, saved at JPEG quality 90: about the
bytes per pixel of ImageNet's photos (~110 KiB at 500x375), which is what decoding time follows.
"""
import argparse
import itertools
import os
import sys
import time
from multiprocessing import Pool

import _bootstrap  # noqa: F401


def write_jpeg(job):
    import numpy as np
    from PIL import Image, ImageDraw

    path, width, height, seed = job
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width] / max(width, height)
    base = np.stack([np.sin(xx * rng.uniform(2, 30) + rng.uniform(0, 6)) * np.cos(yy * rng.uniform(2, 30))
                     for _ in range(3)], -1) * 90 + 128
    img = Image.fromarray(np.clip(base + rng.normal(0, 18, base.shape), 0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(img)
    for _ in range(12):
        x, y, r = rng.integers(0, width), rng.integers(0, height), rng.integers(width // 50, width // 4)
        draw.ellipse((x - r, y - r, x + r, y + r), fill=tuple(int(c) for c in rng.integers(0, 255, 3)))
    img.save(path, quality=90)


def generated_jpegs(folder, count, width, height):
    """`count` JPEGs of width x height in folder (kept: a second run reuses them)."""
    os.makedirs(folder, exist_ok=True)
    jobs = [(os.path.join(folder, f"{width}x{height}-{i:05d}.jpg"), width, height, i) for i in range(count)]
    missing = [job for job in jobs if not os.path.exists(job[0])]
    if missing:
        with Pool(os.cpu_count()) as pool:
            pool.map(write_jpeg, missing, chunksize=8)
    return [job[0] for job in jobs]


def loader_images_per_s(paths, batch, workers, batches, input_size=224):
    """Images per second delivered by the pre-training DataLoader, after its first batch."""
    from torch.utils.data import DataLoader

    from common.images import collate
    from pretrain.data import PretrainDataset

    dataset = PretrainDataset(paths, input_size, 16)
    loader = DataLoader(dataset, batch, shuffle=True, num_workers=workers, collate_fn=collate, drop_last=True,
                        persistent_workers=workers > 0, prefetch_factor=4 if workers else None)
    iterator = iter(loader)
    next(iterator)  # worker start-up is not throughput
    start, seen = time.perf_counter(), 0
    for imgs, _, _ in itertools.islice(iterator, batches):
        seen += len(imgs)
    return seen / (time.perf_counter() - start)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", default="500x375", help="WIDTHxHEIGHT of the generated JPEGs")
    parser.add_argument("--images", type=int, default=400)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--folder", default=os.path.join("/tmp", "mae_bench_data"))
    parser.add_argument("--repo", help="import pretrain/ from this checkout instead (a before/after comparison)")
    args = parser.parse_args(argv)
    if args.repo:
        sys.path.insert(0, os.path.abspath(args.repo))
    import torch

    torch.set_num_threads(1)  # as in a DataLoader worker
    width, height = map(int, args.size.split("x"))
    paths = generated_jpegs(args.folder, args.images, width, height)
    kib = sum(os.path.getsize(p) for p in paths) / len(paths) / 1024
    rate = loader_images_per_s(paths, args.batch, args.workers, args.images // args.batch - 2)
    print(f"{args.size} JPEGs ({kib:.0f} KiB), {args.workers} worker(s): {rate:.1f} img/s, "
          f"{rate / max(args.workers, 1):.1f} img/s per worker")


if __name__ == "__main__":
    main()
