#!/usr/bin/env python
"""What raises the model FLOPs utilisation (MFU) of MAE pre-training: trials of one training step
(forward + backward + AdamW, bf16 autocast, mask 0.75, normalised pixels) on the same weights, images and
noise, each against eager and against the default (pre-training compiles its forward on GPUs).

  python tools/bench_mfu.py --out OUT                          # on a GPU: ViT-B/16, 224 px, batch 512
  python tools/bench_mfu.py --out OUT --trials eager,compile,cudnn_attention --budget-s 300
  python tools/bench_mfu.py --out OUT --device cpu --quick     # the dry run in the test suite (a tiny MAE)

Trials (TRIALS, in this order):
  eager               the model as it is
  compile             torch.compile of the forward: the trainer's default on GPUs (compile='auto')
  transformers        transformers' ViTMAEForPreTraining with the same weights (eager): the peer of the same run
  cudnn_attention     compile, with attention forced onto cuDNN's fused kernel (SDPBackend.CUDNN_ATTENTION)
  compile_optimizer   compile, and the AdamW step compiled too (PyTorch's compiled-optimizer recipe)
  cuda_graphs         torch.compile(mode='reduce-overhead'): inductor's CUDA graphs replay the step's kernels
  batch_2x            compile at twice the batch (the batch layout), if it fits
  max_autotune        torch.compile(mode='max-autotune-no-cudagraphs'): inductor tries matmul and kernel configs

Each row: compile seconds (the first step), img/s (median of the timed steps), MFU (FLOPs counted by
torch's FlopCounterMode / time / the GPU's dense bf16 peak), the relative difference of the first step's
loss from eager's (before any update: the same weights), and a verdict against the default. A trial not
started within --budget-s is recorded as not run. Writes OUT/mfu.csv and OUT/mfu.md as it goes.
"""
import argparse
import contextlib
import csv
import os
import statistics
import sys
import time
import traceback

import torch

from pretrain import build_mae
from pretrain.bench import TINY_MAE, hf_peer, mae_step, peak_flops

# cheapest and likeliest first: a budget that runs out leaves the longest compile (max-autotune) out
TRIALS = ("eager", "compile", "transformers", "cudnn_attention", "compile_optimizer", "cuda_graphs", "batch_2x",
          "max_autotune")
NEEDS_CUDA = {"cuda_graphs", "cudnn_attention"}
COMPILES = {"compile", "compile_optimizer", "cuda_graphs", "max_autotune", "cudnn_attention", "batch_2x"}
COLUMNS = ("trial", "batch", "compile_s", "img_per_s", "mfu_pct", "loss_rel_diff_vs_eager", "speedup_vs_default",
           "verdict", "note")


def build(trial: str, state: dict, args: argparse.Namespace, device: torch.device) -> tuple[torch.nn.Module, dict]:
    """The trial's model (the same weights) and the mae_step options it runs with."""
    model = build_mae(args.model, norm_pix_loss=True, **(TINY_MAE if args.quick else {})).to(device)
    model.load_state_dict(state)
    if trial == "transformers":
        return hf_peer(model, True).to(device), dict(is_hf=True)
    mode = {"cuda_graphs": "reduce-overhead", "max_autotune": "max-autotune-no-cudagraphs"}.get(trial)
    if trial in COMPILES:
        model = torch.compile(model, mode=mode)
    return model, dict(compile_optimizer=trial == "compile_optimizer")


def attention(trial: str) -> contextlib.AbstractContextManager:
    if trial != "cudnn_attention":
        return contextlib.nullcontext()
    from torch.nn.attention import SDPBackend, sdpa_kernel

    return sdpa_kernel(SDPBackend.CUDNN_ATTENTION)


def run_trial(trial, state, inputs, args, device, autocast, eager_loss, flops_of):
    batch = args.batch * (2 if trial == "batch_2x" else 1)
    imgs, noise = inputs(batch)
    model, options = build(trial, state, args, device)
    with attention(trial):
        step, forward_backward = mae_step(model, imgs, noise, autocast, **options)
        start = time.perf_counter()
        first_loss = step().item()  # the loss before this step's update: the weights every trial starts from
        compile_s = time.perf_counter() - start
        for _ in range(args.warmup):
            step()
        times = []
        for _ in range(args.steps):
            start = time.perf_counter()
            step()
            times.append(time.perf_counter() - start)
    seconds = statistics.median(times)
    row = dict(trial=trial, batch=batch, compile_s=compile_s if trial in COMPILES else "", img_per_s=batch / seconds)
    peak = peak_flops(device)
    if peak:
        row["mfu_pct"] = 100 * flops_of(batch) / seconds / peak
    if batch != args.batch:
        row["note"] = "another batch: its loss is not compared"
    elif eager_loss is not None:
        row["loss_rel_diff_vs_eager"] = abs(first_loss - eager_loss) / abs(eager_loss)
    return row, first_loss


def verdict(row: dict, default: dict | None, tolerance: float) -> None:
    """Faster than the default with the same loss (within the precision's tolerance), or why not."""
    if default is None or row["trial"] in ("compile", "eager", "transformers") or "img_per_s" not in row:
        return
    speedup = row["img_per_s"] / default["img_per_s"]
    row["speedup_vs_default"] = speedup
    diff = row.get("loss_rel_diff_vs_eager")
    row["verdict"] = ("drop: loss differs" if diff is not None and diff > tolerance else
                      "drop: not faster (within 2%)" if speedup <= 1.02 else
                      "keep: faster, same loss" if diff is not None else "faster (loss not compared)")


def write(out: str, rows: list[dict], title: str) -> None:
    with open(os.path.join(out, "mfu.csv"), "w", newline="") as f:
        writer = csv.DictWriter(f, COLUMNS)
        writer.writeheader()
        writer.writerows(rows)

    def cell(value):
        return f"{value:.4g}" if isinstance(value, float) else str(value)

    lines = [f"# {title}", "", "| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join(cell(row.get(c, "")) for c in COLUMNS) + " |" for row in rows]
    with open(os.path.join(out, "mfu.md"), "w") as f:
        f.write("\n".join(lines) + "\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="mfu")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--quick", action="store_true", help="a tiny MAE at 32 px: a dry run of every code path")
    parser.add_argument("--model", default="mae_vit_base_patch16")
    parser.add_argument("--batch", type=int, help="default: 512 (4 with --quick)")
    parser.add_argument("--trials", default=",".join(TRIALS), help=f"comma-separated subset of {','.join(TRIALS)}")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--steps", type=int, default=10, help="timed steps per trial (the median counts)")
    parser.add_argument("--budget-s", type=float, default=480, help="no trial starts after this many seconds")
    args = parser.parse_args(argv)
    trials = args.trials.split(",")
    if unknown := [t for t in trials if t not in TRIALS]:
        parser.error(f"--trials: unknown trial(s) {', '.join(unknown)}; choose from {', '.join(TRIALS)}")
    if args.quick:
        args.model, args.warmup, args.steps = "mae_vit_tiny_patch16", 1, 2
    args.batch = args.batch or (4 if args.quick else 512)
    device = torch.device(args.device)
    cuda = device.type == "cuda"
    size = 32 if args.quick else 224
    torch.manual_seed(0)
    model = build_mae(args.model, norm_pix_loss=True, **(TINY_MAE if args.quick else {}))
    state, grid = model.state_dict(), model.grid_size[0] * model.grid_size[1]
    generator = torch.Generator().manual_seed(0)

    def inputs(batch):
        return (torch.randn(batch, 3, size, size, generator=generator).to(device),
                torch.rand(batch, grid, generator=generator).to(device))

    def autocast():
        return torch.autocast("cuda", dtype=torch.bfloat16) if cuda else contextlib.nullcontext()

    tolerance = 2e-2 if cuda else 1e-4  # bf16 reorderings vs fp32 on the CPU
    os.makedirs(args.out, exist_ok=True)
    title = f"MAE pre-training step trials: {args.model}, batch {args.batch}, " + \
            (torch.cuda.get_device_name(device) if cuda else "CPU (dry run)") + f", torch {torch.__version__}"
    rows: list[dict] = []
    flops: dict[int, float] = {}

    def flops_of(batch: int) -> float:
        """One eager forward + backward's FLOPs (a compiled model's kernels are not aten ops that torch counts)."""
        if batch not in flops:
            from torch.utils.flop_counter import FlopCounterMode

            eager, _ = build("eager", state, args, device)
            generator.manual_seed(0)
            _, forward_backward = mae_step(eager, *inputs(batch), autocast)
            counter = FlopCounterMode(display=False)
            with counter:
                forward_backward()
            flops[batch] = counter.get_total_flops()
        return flops[batch]
    eager_loss, default, started = None, None, time.perf_counter()
    for trial in trials:
        if time.perf_counter() - started > args.budget_s:
            rows.append(dict(trial=trial, note=f"not run: the {args.budget_s:.0f} s budget was spent"))
        elif trial in NEEDS_CUDA and not cuda:
            rows.append(dict(trial=trial, note="not run: needs a CUDA GPU"))
        else:
            try:
                # the same inputs for every trial at a batch size
                generator.manual_seed(0)
                row, loss = run_trial(trial, state, inputs, args, device, autocast, eager_loss, flops_of)
                if trial == "eager":
                    eager_loss = loss
                    row["loss_rel_diff_vs_eager"] = 0.0
                if trial == "compile":
                    default = row
                verdict(row, default, tolerance)
                rows.append(row)
            except Exception as e:  # noqa: BLE001  (one failing trial must not cost the others)
                traceback.print_exc()
                if cuda:
                    torch.cuda.empty_cache()
                rows.append(dict(trial=trial, note=f"error: {type(e).__name__}: {str(e).splitlines()[0][:160] if str(e) else ''}"))
            torch._dynamo.reset()
        print(f"[mfu] {rows[-1]}", flush=True)
        write(args.out, rows, title)
    print(f"wrote {os.path.join(args.out, 'mfu.csv')} and mfu.md")
    return 0 if all(not str(row.get("note", "")).startswith("error") for row in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
