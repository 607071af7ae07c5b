"""Measuring pieces the benchmarks share (tools/bench_pretrain.py, bench_data.py, bench_gpu.py): one
pre-training step as the trainer runs it, transformers' ViTMAEForPreTraining with the same weights
(the speed peer), and the pre-training loader's throughput on generated JPEGs."""
import itertools
import os
import re
import time
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from typing import Any, cast
from multiprocessing import Pool

import torch

from backbones.checkpoint import official_to_hf_vitmae
from backbones.vit import Block
from common.gpu_data import data_loader

from .data import PretrainDataset
from .mae import MaskedAutoencoder


def hf_peer(ours: MaskedAutoencoder, norm_pix_loss: bool) -> torch.nn.Module:
    from transformers import ViTMAEConfig, ViTMAEForPreTraining

    dec = cast(Block, ours.decoder_blocks[0])
    cfg = ViTMAEConfig(hidden_size=ours.embed_dim, num_hidden_layers=ours.depth, num_attention_heads=ours.num_heads,
                       intermediate_size=4 * ours.embed_dim, image_size=ours.grid_size[0] * ours.patch_size,
                       patch_size=ours.patch_size, decoder_hidden_size=ours.decoder_embed.out_features,
                       decoder_num_hidden_layers=len(ours.decoder_blocks), decoder_num_attention_heads=dec.attn.num_heads,
                       decoder_intermediate_size=4 * ours.decoder_embed.out_features, layer_norm_eps=1e-6,
                       norm_pix_loss=norm_pix_loss, mask_ratio=0.75, attn_implementation="sdpa")
    peer = ViTMAEForPreTraining(cfg)
    state = official_to_hf_vitmae(ours.state_dict())
    if not set(state) <= set(peer.state_dict()):  # transformers >= 5 renamed the layers' parameters
        state = {_transformers5_name(key): value for key, value in state.items()}
    peer.load_state_dict(state, strict=True)
    return peer


_TRANSFORMERS5_RENAMES = [(r"^vit\.encoder\.layer\.", "vit.layers."), (r"attention\.attention\.query", "attention.q_proj"),
                          (r"attention\.attention\.key", "attention.k_proj"), (r"attention\.attention\.value", "attention.v_proj"),
                          (r"attention\.output\.dense", "attention.o_proj"), (r"intermediate\.dense", "mlp.fc1"),
                          (r"\.output\.dense", ".mlp.fc2")]


def _transformers5_name(key: str) -> str:
    for pattern, new in _TRANSFORMERS5_RENAMES:
        key = re.sub(pattern, new, key)
    return key


# the benchmarks' dry runs (--quick): ViT-Tiny width with 8 px patches on 32 px images and a narrow decoder
TINY_MAE = dict(img_size=32, patch_size=8, decoder_embed_dim=64, decoder_num_heads=4)
# Dense bf16/fp16 tensor-core peaks (NVIDIA's data sheets, SXM parts), for model FLOPs utilisation.
PEAK_FLOPS = {"H100": 989e12, "H200": 989e12, "A100": 312e12}


def peak_flops(device: torch.device) -> float | None:
    """The GPU's dense bf16 peak (FLOP/s); None on a CPU or an unlisted GPU."""
    if device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(device)
    return next((flops for key, flops in PEAK_FLOPS.items() if key in name), None)


def mae_step(model: torch.nn.Module, imgs: torch.Tensor, noise: torch.Tensor | None,
             autocast: Callable[[], AbstractContextManager[Any]], is_hf: bool = False,
             compile_optimizer: bool = False) -> tuple[Callable[[], torch.Tensor], Callable[[], torch.Tensor]]:
    """-> (step, forward_backward): one training step as the trainer runs it (forward + backward +
    fused AdamW; it waits for the GPU, so a timer around it times the whole step) and the forward +
    backward alone (for FLOP counting); both return the loss. autocast: a context factory.
    compile_optimizer: AdamW's step through torch.compile instead (which fuses it itself)."""
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4, betas=(0.9, 0.95),
                            weight_decay=0.05, fused=not compile_optimizer)
    optimizer_step = torch.compile(opt.step) if compile_optimizer else opt.step

    def forward_backward() -> torch.Tensor:
        with autocast():
            loss = model(pixel_values=imgs, noise=noise).loss if is_hf else model(imgs, mask_ratio=0.75, noise=noise)[0]
        loss.backward()
        return loss

    def step() -> torch.Tensor:
        loss = forward_backward()
        optimizer_step()
        opt.zero_grad(set_to_none=True)
        if imgs.is_cuda:
            torch.cuda.synchronize()
        return loss

    return step, forward_backward


def write_jpeg(job: tuple[str, int, int, int]) -> None:
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
        x, y, r = int(rng.integers(0, width)), int(rng.integers(0, height)), int(rng.integers(width // 50, width // 4))
        draw.ellipse((x - r, y - r, x + r, y + r), fill=tuple(int(c) for c in rng.integers(0, 255, 3)))
    img.save(path, quality=90)


def generated_jpegs(folder: str, count: int, width: int, height: int) -> list[str]:
    """`count` JPEGs of width x height in folder (kept: a second run reuses them)."""
    os.makedirs(folder, exist_ok=True)
    jobs = [(os.path.join(folder, f"{width}x{height}-{i:05d}.jpg"), width, height, i) for i in range(count)]
    missing = [job for job in jobs if not os.path.exists(job[0])]
    if missing:
        with Pool(os.cpu_count()) as pool:
            pool.map(write_jpeg, missing, chunksize=8)
    return [job[0] for job in jobs]


def loader_images_per_s(paths: Sequence[str], batch: int, workers: int, batches: int, input_size: int = 224,
                        backend: str = "pil", device: str | torch.device = "cpu") -> tuple[float, float, float]:
    """(images per second delivered by the pre-training loader after its first batch, CPU milliseconds per image
    in its workers, in the main process) for a data backend; the gpu backend's batches finished on `device`."""
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
        assert imgs is not None, "bad_images='fail' raises before an empty batch"
        seen += len(imgs)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    rate = seen / (time.perf_counter() - start)
    worker_s, main_s = (after - earlier for after, earlier in zip(cpu_seconds(), before))
    return rate, 1000 * worker_s / seen, 1000 * main_s / seen


def cpu_seconds() -> tuple[float, float]:
    """(CPU seconds of this process's child processes, the loader's workers; of this process), from /proc."""
    def of(pid: str) -> float:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()  # utime and stime: the 14th and 15th fields
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    children = []
    for task in os.listdir("/proc/self/task"):
        with open(f"/proc/self/task/{task}/children") as f:
            children += f.read().split()
    return sum(map(of, children)), of("self")
