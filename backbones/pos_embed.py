"""Position embeddings: the official MAE 2-D sin-cos formula and resampling to another grid."""
from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F


def sincos_1d(embed_dim: int, positions: np.ndarray) -> np.ndarray:
    """(M,) positions -> (M, embed_dim): sin of the first half of frequencies, then cos."""
    if embed_dim % 2:
        raise ValueError(f"sin-cos embedding needs an even dimension, got {embed_dim}")
    omega = np.arange(embed_dim // 2, dtype=np.float64) / (embed_dim / 2.0)
    omega = 1.0 / 10000**omega
    out = np.einsum("m,d->md", positions.reshape(-1).astype(np.float64), omega)
    return np.concatenate([np.sin(out), np.cos(out)], axis=1)


def sincos_2d(embed_dim: int, grid_size: int | tuple[int, int], num_prefix_tokens: int = 0) -> torch.Tensor:
    """Fixed 2-D sin-cos embedding of a (rows, cols) grid, row-major, as in the official MAE.

    The first half of the channels encodes the column index and the second half the row index
    (the official code's meshgrid order), so a square grid gives the official values exactly.
    Prefix tokens (cls) get zeros. Returns float32 (1, prefix + rows * cols, embed_dim).
    """
    rows, cols = (grid_size, grid_size) if isinstance(grid_size, int) else grid_size
    if embed_dim % 4:
        raise ValueError(f"2-D sin-cos embedding needs a dimension divisible by 4, got {embed_dim}")
    col_idx, row_idx = np.meshgrid(np.arange(cols, dtype=np.float32), np.arange(rows, dtype=np.float32))
    emb = np.concatenate([sincos_1d(embed_dim // 2, col_idx), sincos_1d(embed_dim // 2, row_idx)], axis=1)
    emb = np.concatenate([np.zeros([num_prefix_tokens, embed_dim]), emb], axis=0)
    return torch.from_numpy(emb).float().unsqueeze(0)


def resample_pos_embed(pos_embed: torch.Tensor, new_grid: int | tuple[int, int], num_prefix_tokens: int = 1,
                       old_grid: tuple[int, int] | None = None) -> torch.Tensor:
    """Bicubic resampling of a (1, prefix + H*W, C) embedding to new_grid=(rows, cols).

    old_grid defaults to a square grid. Prefix tokens are kept as they are.
    """
    prefix, patch = pos_embed[:, :num_prefix_tokens], pos_embed[:, num_prefix_tokens:]
    if old_grid is None:
        side = int(math.isqrt(patch.shape[1]))
        if side * side != patch.shape[1]:
            raise ValueError(f"pos_embed has {patch.shape[1]} patch positions: not a square grid, pass old_grid")
        old_grid = (side, side)
    rows, cols = (new_grid, new_grid) if isinstance(new_grid, int) else new_grid
    new_grid = (rows, cols)
    if tuple(old_grid) == new_grid:
        return pos_embed
    dim = patch.shape[-1]
    patch = patch.reshape(1, *old_grid, dim).permute(0, 3, 1, 2).float()
    patch = F.interpolate(patch, size=new_grid, mode="bicubic", align_corners=False)
    patch = patch.permute(0, 2, 3, 1).reshape(1, -1, dim).to(pos_embed.dtype)
    return torch.cat([prefix, patch], dim=1)
