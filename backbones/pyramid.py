"""Resampling of single-scale ViT feature maps (stride 16) into a pyramid, shared by detection and
segmentation: scale 4 is deconv-norm-GELU-deconv, 2 is a deconv, 1 the identity, 0.5 a max-pool
(BEiT's UperNet neck; the A.3 design of the paper, after Li et al. 2021). 0.25 (a 4x4 max-pool)
serves 8 px patches, whose maps have stride 8."""
from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F


class LayerNorm2d(nn.LayerNorm):
    """LayerNorm over the channels of an (N, C, H, W) map."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.layer_norm(x.permute(0, 2, 3, 1), self.normalized_shape, self.weight, self.bias, self.eps).permute(0, 3, 1, 2)


def _norm(kind, dim):
    if kind == "bn":
        return nn.BatchNorm2d(dim)
    if kind == "syncbn":  # statistics over every process's batch (needs a process group in training)
        return nn.SyncBatchNorm(dim)
    if kind == "ln":
        return LayerNorm2d(dim, eps=1e-6)
    raise ValueError(f"norm must be 'bn', 'syncbn' or 'ln', got {kind!r}")


def resampler(scale: float, dim: int, norm: str = "bn") -> nn.Module:
    if scale == 4:
        return nn.Sequential(nn.ConvTranspose2d(dim, dim, 2, 2), _norm(norm, dim), nn.GELU(), nn.ConvTranspose2d(dim, dim, 2, 2))
    if scale == 2:
        return nn.ConvTranspose2d(dim, dim, 2, 2)
    if scale == 1:
        return nn.Identity()
    if scale in (0.5, 0.25):
        return nn.MaxPool2d(int(1 / scale), int(1 / scale))
    raise ValueError(f"scale must be one of 4, 2, 1, 0.5, 0.25; got {scale}")


class MultiScaleResample(nn.Module):
    """features[i] (N, dim, H, W) -> resamplers[i](features[i]) at scales[i] (H*scale, W*scale)."""

    def __init__(self, dim: int, scales: Sequence[float] = (4, 2, 1, 0.5), norm: str = "bn") -> None:
        super().__init__()
        self.scales = tuple(scales)
        self.resamplers = nn.ModuleList(resampler(s, dim, norm) for s in self.scales)

    def forward(self, features: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        if len(features) != len(self.resamplers):
            raise ValueError(f"got {len(features)} feature maps for {len(self.resamplers)} scales {self.scales}")
        return [r(x) for r, x in zip(self.resamplers, features)]
