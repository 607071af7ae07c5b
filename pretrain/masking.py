"""Mask sampling (paper Table 1f) expressed as per-patch noise.

The model keeps the patches with the smallest noise (argsort(noise)[:, :len_keep], as in the
official code), so every strategy only has to produce noise: random is uniform noise; block-wise
and grid-wise give masked patches noise >= 1 and visible patches noise < 1 (ties broken at random,
so the number kept is always exactly len_keep).
"""
from __future__ import annotations

import math

import torch

STRATEGIES = ("random", "block", "grid")


def sample_noise(strategy: str, grid: tuple[int, int], mask_ratio: float, batch: int | None = None,
                 generator: torch.Generator | None = None) -> torch.Tensor:
    """Noise of shape (rows*cols,) or (batch, rows*cols) for a patch grid (rows, cols)."""
    if strategy not in STRATEGIES:
        raise ValueError(f"mask_sampling must be one of {STRATEGIES}, got {strategy!r}")
    if batch is not None:
        return torch.stack([sample_noise(strategy, grid, mask_ratio, None, generator) for _ in range(batch)])
    rows, cols = grid
    tiebreak = torch.rand(rows * cols, generator=generator)
    if strategy == "random":
        return tiebreak
    if strategy == "grid":
        masked = _grid_mask(rows, cols, mask_ratio)
    else:
        masked = _block_mask(rows, cols, mask_ratio, generator)
    return masked.flatten().float() + 0.5 * tiebreak


def _grid_mask(rows, cols, mask_ratio):
    """Keeps one patch of every s x s cell (s = 2 for the paper's 75%)."""
    s = round(1 / math.sqrt(1 - mask_ratio))
    if abs(1 - 1 / s**2 - mask_ratio) > 1e-6:
        raise ValueError(f"grid-wise masking needs mask_ratio = 1 - 1/s^2 (e.g. 0.75), got {mask_ratio}")
    keep = torch.zeros(rows, cols, dtype=torch.bool)
    keep[::s, ::s] = True
    return ~keep


def _block_mask(rows, cols, mask_ratio, generator):
    """BEiT-style block-wise masking: random rectangles (area >= 16 patches, aspect 0.3-3.3)."""
    target = int(round(rows * cols * mask_ratio))
    masked = torch.zeros(rows, cols, dtype=torch.bool)
    log_aspect = (math.log(0.3), math.log(1 / 0.3))

    def uniform(lo: float, hi: float) -> float:
        return lo + (hi - lo) * torch.rand((), generator=generator).item()

    for _ in range(100 * rows * cols):  # bounded: each accepted block adds at least one patch
        remaining = target - int(masked.sum())
        if remaining <= 0:
            break
        area = uniform(min(16, remaining), max(min(16, remaining), remaining))
        aspect = math.exp(uniform(*log_aspect))
        h = min(rows, max(1, int(round(math.sqrt(area * aspect)))))
        w = min(cols, max(1, int(round(math.sqrt(area / aspect)))))
        top = int(torch.randint(0, rows - h + 1, (), generator=generator))
        left = int(torch.randint(0, cols - w + 1, (), generator=generator))
        masked[top:top + h, left:left + w] = True
    return masked
