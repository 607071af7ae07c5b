"""The shared ViT with a classification head, and the three transfer protocols' trainable sets.

Names match the official MAE fine-tuning model: with global pooling the final `norm` is replaced
by `fc_norm` after averaging the patch tokens; the linear probe keeps `norm` and reads the cls
token through `head = Sequential(BatchNorm1d(affine=False), Linear)` (keys head.0.*, head.1.*).
"""
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn as nn

from backbones import MAE_DECODER_KEYS, LoadReport, load_checkpoint
from backbones.vit import VisionTransformer, vit_arguments

MODES = ("finetune", "linprobe", "partial", "scratch")


class ViTClassifier(VisionTransformer):
    def __init__(self, num_classes: int, global_pool: bool = True, bn_head: bool = False, **vit_kwargs: Any) -> None:
        super().__init__(**vit_kwargs)
        self.global_pool = global_pool
        if global_pool:
            self.fc_norm = nn.LayerNorm(self.embed_dim, eps=self.norm.eps)
            del self.norm
        linear = nn.Linear(self.embed_dim, num_classes)
        nn.init.trunc_normal_(linear.weight, std=0.01 if bn_head else 2e-5)  # official: linprobe / fine-tune
        nn.init.zeros_(linear.bias)
        self.head = nn.Sequential(nn.BatchNorm1d(self.embed_dim, affine=False, eps=1e-6), linear) if bn_head else linear

    def features(self, imgs: torch.Tensor) -> torch.Tensor:
        x, grid = self.embed(imgs)
        x, _ = self.run_blocks(self.prepend_cls_token(x), grid, 1)
        return self.fc_norm(x[:, 1:].mean(dim=1)) if self.global_pool else self.norm(x)[:, 0]

    def forward(self, imgs: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(imgs))


def build_classifier(backbone: str, num_classes: int, mode: str = "finetune", img_size: int = 224, drop_path_rate: float = 0.0,
                     **overrides: Any) -> ViTClassifier:
    """backbone: vit_{tiny,small,base,large}_patch16 / vit_huge_patch14 (any patch size).

    finetune / partial / scratch: global average pooling + fc_norm, learnable pos_embed (the
    official fine-tuning model); linprobe: cls token + BatchNorm head, frozen encoder.
    """
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    kwargs = dict(vit_arguments(backbone), img_size=img_size, drop_path_rate=drop_path_rate,
                  learnable_pos_embed=mode != "linprobe")
    kwargs.update(overrides)
    return ViTClassifier(num_classes, global_pool=mode != "linprobe", bn_head=mode == "linprobe", **kwargs)


def load_pretrained(model: ViTClassifier, path: str) -> LoadReport:
    """Loads an MAE encoder (official or ours) into a classifier: the decoder is dropped, the head
    (and fc_norm, which replaces the encoder's norm under global pooling) start fresh."""
    drop = MAE_DECODER_KEYS + (("norm.*",) if model.global_pool else ())
    return load_checkpoint(model, path, drop=drop, allow_missing=("head.*", "fc_norm.*"))


def set_trainable(model: VisionTransformer, mode: str, blocks: float = 0.0) -> list[str]:
    """Freezes what the protocol freezes; returns the names of the trainable parameters.

    finetune/scratch: everything. linprobe: the head only. partial: the last `blocks` blocks plus
    the final norm and head; blocks=0.5 tunes only the MLP half (norm2 + mlp) of the last block.
    """
    n = len(model.blocks)
    for name, p in model.named_parameters():
        if mode in ("finetune", "scratch"):
            train = True
        elif mode == "linprobe":
            train = name.startswith("head.")
        else:
            train = name.startswith(("head.", "fc_norm.", "norm."))
            whole = int(blocks)
            for i in range(n - whole, n):
                train |= name.startswith(f"blocks.{i}.")
            if blocks - whole == 0.5 and whole < n:
                last = n - whole - 1
                train |= name.startswith((f"blocks.{last}.norm2.", f"blocks.{last}.mlp."))
        p.requires_grad_(train and (name != "pos_embed" or mode != "linprobe"))
    return [name for name, p in model.named_parameters() if p.requires_grad]


@torch.no_grad()
def accuracy(logits: torch.Tensor, targets: torch.Tensor, topk: Sequence[int] = (1, 5)) -> list[int]:
    """Number of correct predictions for each k."""
    top = logits.topk(max(topk), dim=1).indices
    hits = top.eq(targets[:, None])
    return [int(hits[:, :k].any(dim=1).sum()) for k in topk]
