#!/usr/bin/env python
"""Times the pre-training data loader (tools/pretrain.py's PretrainDataset + DataLoader) on
generated JPEGs, for each data backend: images per second in all and per worker process, and the
CPU time per image in the workers and in the main process (which decodes for the gpu backend): the
cost per core, which shared cores distort less than the rates.

  python tools/bench_data.py                         # ImageNet-sized JPEGs (500x375), 1 worker, both backends
  python tools/bench_data.py --size 3000x2000        # camera-sized photos (draft-mode decoding)
  python tools/bench_data.py --workers 15 --images 3000 --backend gpu --device cuda
  python tools/bench_data.py --repo /path/to/other/checkout --backend pil   # the same measurement of another version

The images are smooth colour fields with discs and grain, saved at JPEG quality 90: about the
bytes per pixel of ImageNet's photos (~110 KiB at 500x375), which is what decoding time follows.
The gpu backend decodes and crops in this process on --device (nvJPEG on a GPU; on a CPU, one
thread, as a DataLoader worker has).
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


def loader_images_per_s(paths, batch, workers, batches, input_size=224, backend="pil", device="cpu"):
    """(images per second delivered by the pre-training loader after its first batch, CPU milliseconds per image
    in its workers, in the main process) for a data backend; the gpu backend's batches finished on `device`."""
    import torch

    from common.gpu_data import data_loader
    from pretrain.data import PretrainDataset

    device = torch.device(device)
    dataset = PretrainDataset(paths, input_size, 16, data_backend=backend)
    loader = data_loader(dataset, dataset.transform, device, "fail", batch_size=batch, shuffle=True,
                         num_workers=workers, drop_last=True, prefetch_factor=4 if workers else None)
    # Stop a batch short of the epoch's end: an exhausted iterator shuts its workers down, and a worker that has
    # gone takes its CPU time with it (or is gone from /proc between listing and reading).
    batches = min(batches, len(loader) - 2)
    iterator = iter(loader)
    next(iterator)  # worker start-up is not throughput
    before, start, seen = cpu_seconds(), time.perf_counter(), 0
    for imgs, _, _ in itertools.islice(iterator, batches):
        seen += len(imgs)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    rate = seen / (time.perf_counter() - start)
    worker_s, main_s = (after - earlier for after, earlier in zip(cpu_seconds(), before))
    return rate, 1000 * worker_s / seen, 1000 * main_s / seen


def cpu_seconds():
    """(CPU seconds of this process's child processes, the loader's workers; of this process), from /proc."""
    def of(pid):
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()  # utime and stime: the 14th and 15th fields
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    children = []
    for task in os.listdir("/proc/self/task"):
        with open(f"/proc/self/task/{task}/children") as f:
            children += f.read().split()
    return sum(map(of, children)), of("self")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", default="500x375", help="WIDTHxHEIGHT of the generated JPEGs")
    parser.add_argument("--images", type=int, default=400)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--backend", choices=("pil", "gpu", "both"), default="both")
    parser.add_argument("--device", help="where the gpu backend decodes (default: cuda if there is one, else cpu)")
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
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    for backend in ("pil", "gpu") if args.backend == "both" else (args.backend,):
        rate, worker_ms, main_ms = loader_images_per_s(paths, args.batch, args.workers, args.images // args.batch - 2,
                                                       backend=backend, device=device)
        where = f" (decoding on {device})" if backend == "gpu" else ""
        print(f"{args.size} JPEGs ({kib:.0f} KiB), {backend} backend{where}, {args.workers} worker(s): {rate:.1f} img/s, "
              f"{rate / max(args.workers, 1):.1f} img/s per worker; CPU per image: workers {worker_ms:.2f} ms, main "
              f"process {main_ms:.2f} ms ({1000 / (worker_ms + main_ms):.0f} img/s per core)")


if __name__ == "__main__":
    main()
