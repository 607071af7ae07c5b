#!/usr/bin/env python
"""Times MAE pre-training steps (forward + backward + AdamW) and writes a CSV.

1. Ours vs transformers' ViTMAEForPreTraining, same weights, images, noise, precision and process
   (ViT-B/16, 224 px, mask 0.75, norm-pix loss by default).
2. Table 2: encoder with mask tokens vs MAE's encoder on visible patches only (ViT-L, decoder
   depth 8 and 1); speed-ups relative to "encoder w/ [M], decoder depth 8", as in the paper.

  python tools/bench_pretrain.py --out docs/bench_pretrain.csv
  python tools/bench_pretrain.py --device cuda --batch 128 --table2-batch 64   # on a GPU
"""
import argparse
import contextlib
import csv
import os
import platform
import statistics
import time

import torch

from pretrain.bench import hf_peer, mae_step
from pretrain import build_mae


def cpu_name():
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def time_steps(steps_by_name, repeats, warmup):
    """Median seconds per step for each named step function, measured round-robin (A B A B ...)
    so that a change in machine load affects every contender alike."""
    for step in steps_by_name.values():
        for _ in range(warmup):
            step()
    times = {name: [] for name in steps_by_name}
    for _ in range(repeats):
        for name, step in steps_by_name.items():
            start = time.perf_counter()
            step()
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(t) for name, t in times.items()}


def autocast_for(precision, device):
    """A factory of the autocast context of a precision ("bf16" or "fp32")."""
    return lambda: torch.autocast(device.type, dtype=torch.bfloat16) if precision == "bf16" else contextlib.nullcontext()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="mae_vit_base_patch16")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--precisions", default="fp32,bf16")
    parser.add_argument("--table2-model", default="mae_vit_large_patch16")
    parser.add_argument("--table2-batch", type=int, default=8)
    parser.add_argument("--skip-peer", action="store_true")
    parser.add_argument("--skip-table2", action="store_true")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--out", default="bench_pretrain.csv")
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    machine = torch.cuda.get_device_name(device) if device.type == "cuda" else f"{cpu_name()}, {torch.get_num_threads()} threads"
    rows = []

    def record(section, name, precision, batch, seconds):
        rows.append(dict(section=section, model=name, precision=precision, batch=batch, s_per_step=f"{seconds:.4f}",
                         img_per_s=f"{batch / seconds:.2f}", device=machine, torch=torch.__version__))
        print(f"{section:8s} {name:45s} {precision:5s} batch {batch:4d}: {seconds:8.3f} s/step {batch / seconds:8.2f} img/s", flush=True)

    torch.manual_seed(0)
    imgs = torch.randn(args.batch, 3, 224, 224, device=device)
    base = build_mae(args.model, norm_pix_loss=True)
    noise = torch.rand(args.batch, base.grid_size[0] * base.grid_size[1], device=device)
    speed = {}
    for precision in args.precisions.split(","):
        ours = build_mae(args.model, norm_pix_loss=True).to(device)
        ours.load_state_dict(base.state_dict())
        autocast = autocast_for(precision, device)
        contenders = {"ours": mae_step(ours, imgs, noise, autocast)[0]}
        if not args.skip_peer:
            contenders["hf"] = mae_step(hf_peer(base, True).to(device), imgs, noise, autocast, is_hf=True)[0]
        for who, seconds in time_steps(contenders, args.steps, args.warmup).items():
            speed[(who, precision)] = seconds
            record("peer", f"ours {args.model}" if who == "ours" else "transformers ViTMAEForPreTraining",
                   precision, args.batch, seconds)
        del contenders, ours
    if not args.skip_peer:
        for precision in args.precisions.split(","):
            print(f"ours / transformers, {precision}: {speed[('hf', precision)] / speed[('ours', precision)]:.2f}x")
        if "fp32" in args.precisions:
            for precision in args.precisions.split(","):
                print(f"ours {precision} / transformers fp32: {speed[('hf', 'fp32')] / speed[('ours', precision)]:.2f}x")

    if not args.skip_table2:
        default_precision = args.precisions.split(",")[-1]
        imgs2, noise2 = imgs[: args.table2_batch], noise[: args.table2_batch]
        table2 = {}
        for mask_token_in_encoder, depth in ((True, 8), (False, 8), (False, 1)):
            model = build_mae(args.table2_model, norm_pix_loss=True, decoder_depth=depth,
                              encoder_mask_token=mask_token_in_encoder).to(device)
            name = f"{args.table2_model} {'w/ [M]' if mask_token_in_encoder else 'w/o [M]'} dec{depth}"
            step = mae_step(model, imgs2, noise2, autocast_for(default_precision, device))[0]
            table2[(mask_token_in_encoder, depth)] = time_steps({name: step}, args.steps, 1)[name]
            record("table2", name, default_precision, args.table2_batch, table2[(mask_token_in_encoder, depth)])
            del model
        ref = table2[(True, 8)]
        for depth, paper in ((8, 2.8), (1, 3.7)):
            ratio = ref / table2[(False, depth)]
            rows.append(dict(section="table2", model=f"speed-up w/o [M] dec{depth} vs w/ [M] dec8 (paper {paper}x)",
                             precision=default_precision, batch=args.table2_batch, s_per_step="", img_per_s=f"{ratio:.2f}x",
                             device=machine, torch=torch.__version__))
            print(f"Table 2 speed-up, encoder w/o mask tokens, decoder depth {depth}: {ratio:.2f}x (paper {paper}x)")

    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w", newline="") as f:
        writer = csv.DictWriter(f, list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
