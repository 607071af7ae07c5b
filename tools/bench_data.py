#!/usr/bin/env python
"""Times the pre-training data loader (tools/pretrain.py's PretrainDataset + DataLoader) on
generated JPEGs, for each data backend: images per second in all and per worker process, and the
CPU time per image in the workers and in the main process (which decodes for the gpu backend): the
cost per core, which shared cores distort less than the rates.

  python tools/bench_data.py                         # ImageNet-sized JPEGs (500x375), 1 worker, both backends
  python tools/bench_data.py --size 3000x2000        # camera-sized photos (draft-mode decoding)
  python tools/bench_data.py --workers 15 --images 3000 --backend gpu --device cuda
  PYTHONPATH=/path/to/other/checkout python tools/bench_data.py --backend pil   # the same measurement of another version

The images are smooth colour fields with discs and grain, saved at JPEG quality 90: about the
bytes per pixel of ImageNet's photos (~110 KiB at 500x375), which is what decoding time follows.
The gpu backend decodes and crops in this process on --device (nvJPEG on a GPU; on a CPU, one
thread, as a DataLoader worker has).
"""
import argparse
import os

from pretrain.bench import generated_jpegs, loader_images_per_s



def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", default="500x375", help="WIDTHxHEIGHT of the generated JPEGs")
    parser.add_argument("--images", type=int, default=400)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--backend", choices=("pil", "gpu", "both"), default="both")
    parser.add_argument("--device", help="where the gpu backend decodes (default: cuda if there is one, else cpu)")
    parser.add_argument("--folder", default=os.path.join("/tmp", "mae_bench_data"))
    args = parser.parse_args(argv)
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
