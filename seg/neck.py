from collections.abc import Sequence
from typing import Any

import torch
from mmengine.model import BaseModule
from mmseg.registry import MODELS

from backbones.pyramid import MultiScaleResample

NORMS = {"SyncBN": "syncbn", "BN": "bn", "LN": "ln"}


@MODELS.register_module()
class MultiScaleNeck(BaseModule):
    """The shared pyramid resampling (backbones.pyramid) as an mmseg neck: four stride-16 maps to
    strides 4, 8, 16 and 32. norm_cfg as in mmseg (type SyncBN, BN or LN): SyncBN, as mmseg's
    Feature2Pyramid and BEiT's neck, normalises over the whole multi-GPU batch; tools/train_seg.py
    turns SyncBN into BN in a single-process run."""

    def __init__(self, embed_dim: int, scales: Sequence[float] = (4, 2, 1, 0.5), norm_cfg: dict[str, Any] | None = None,
                 init_cfg: dict[str, Any] | list[dict[str, Any]] | None = None) -> None:
        super().__init__(init_cfg)
        norm = (norm_cfg or dict(type="SyncBN"))["type"]  # mmseg's Feature2Pyramid default: SyncBN
        if norm not in NORMS:
            raise ValueError(f"norm_cfg type must be one of {tuple(NORMS)}, got {norm!r}")
        self.resample = MultiScaleResample(embed_dim, scales, NORMS[norm])

    def forward(self, inputs: Sequence[torch.Tensor]) -> tuple[torch.Tensor, ...]:
        return tuple(self.resample(list(inputs)))
