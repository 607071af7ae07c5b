"""Optimizer parameter groups: layer-wise lr decay and weight-decay exclusions, one rule for all tasks.

Layer ids: patch_embed / cls_token / pos_embed are layer 0, `blocks.i` is layer i + 1, everything
else (final norm, heads, necks, decoders) is the top layer num_blocks + 1 with lr scale 1.
Names are matched anywhere in the dotted path, so the rule holds for a ViT nested inside a detector
(`backbone.net.blocks.3.attn.qkv.weight`) as well as for a bare one.

Which parameters are exempt from weight decay is the `decay_rule` option, one per reference recipe:
  "mae"    the official MAE fine-tuning (util/lr_decay.py): 1-D parameters (biases, norms) and the
           position tables (pos_embed, cls_token, relative positions);
  "1d"     1-D parameters and biases only: the official MAE pre-training (timm's add_weight_decay)
           and mmseg's / BEiT's LayerDecayOptimizerConstructor as they run (their name test for
           pos_embed and cls_token compares the bare name with the full one and never matches);
  "vitdet" Detectron2's ViTDet optimizer, get_default_optimizer_params(weight_decay_norm=0,
           overrides={"pos_embed": {"weight_decay": 0}}): parameters of torch normalisation layers
           (an isinstance test, so Detectron2's own LayerNorm in pyramids and heads is decayed) and
           pos_embed; biases and rel_pos_h/w are decayed;
  "all"    every parameter decays (ViTDet's ViT-H config: weight_decay_norm=None, no overrides).
"""
from __future__ import annotations

import re
from typing import Any

import torch.nn as nn

EMBEDDING_NAMES = ("patch_embed", "cls_token", "pos_embed")
POSITION_TABLE_NAMES = ("pos_embed", "cls_token", "relative_position_bias_table", "rel_pos_h", "rel_pos_w")
DECAY_RULES = ("mae", "1d", "vitdet", "all")
# the module types of Detectron2's get_default_optimizer_params (subclasses included)
TORCH_NORM_TYPES = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.SyncBatchNorm, nn.GroupNorm, nn.InstanceNorm1d,
                    nn.InstanceNorm2d, nn.InstanceNorm3d, nn.LayerNorm, nn.LocalResponseNorm)
_BLOCK = re.compile(r"(?:^|\.)blocks\.(\d+)\.")


def layer_id(name: str, num_blocks: int) -> int:
    parts = name.split(".")
    if any(p in EMBEDDING_NAMES for p in parts):
        return 0
    match = _BLOCK.search(name)
    if match:
        return int(match.group(1)) + 1
    return num_blocks + 1


def _exempt_from_decay(rule, name, param, norm_params):
    if rule == "mae":
        return param.ndim == 1 or name.endswith(".bias") or any(p in POSITION_TABLE_NAMES for p in name.split("."))
    if rule == "1d":
        return param.ndim == 1 or name.endswith(".bias")
    if rule == "vitdet":
        return param in norm_params or name.rpartition(".")[2] == "pos_embed"
    return False


def param_groups(model: nn.Module, weight_decay: float, layer_decay: float = 1.0, num_blocks: int | None = None,
                 decay_rule: str = "mae") -> list[dict]:
    """Groups of trainable parameters with "lr_scale" (layer_decay ** (top - layer)) and weight decay
    (0 for the parameters that decay_rule exempts, see the module docstring).

    num_blocks defaults to the number of `blocks.i` indices found in the model's parameter names.
    Every group carries "lr_scale", "weight_decay", "layer_id" and "param_names"; the trainer
    multiplies the scheduled lr by lr_scale.
    """
    if decay_rule not in DECAY_RULES:
        raise ValueError(f"decay_rule must be one of {DECAY_RULES}, got {decay_rule!r}")
    norm_params = {p for m in model.modules() if isinstance(m, TORCH_NORM_TYPES) for p in m.parameters(recurse=False)}
    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    if num_blocks is None:
        ids = {int(m.group(1)) for n, _ in named if (m := _BLOCK.search(n))}
        num_blocks = max(ids) + 1 if ids else 0
    groups: dict[tuple[int, bool], dict[str, Any]] = {}
    for name, param in named:
        no_decay = _exempt_from_decay(decay_rule, name, param, norm_params)
        lid = layer_id(name, num_blocks)
        key = (lid, no_decay)
        if key not in groups:
            groups[key] = {"params": [], "param_names": [], "layer_id": lid,
                           "weight_decay": 0.0 if no_decay else weight_decay,
                           "lr_scale": layer_decay ** (num_blocks + 1 - lid)}
        groups[key]["params"].append(param)
        groups[key]["param_names"].append(name)
    return [groups[k] for k in sorted(groups)]
