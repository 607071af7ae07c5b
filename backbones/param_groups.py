"""Optimizer parameter groups: layer-wise lr decay and weight-decay exclusions, one rule for all tasks.

Layer ids: patch_embed / cls_token / pos_embed are layer 0, `blocks.i` is layer i + 1, everything
else (final norm, heads, necks, decoders) is the top layer num_blocks + 1 with lr scale 1.
Names are matched anywhere in the dotted path, so the rule holds for a ViT nested inside a detector
(`backbone.net.blocks.3.attn.qkv.weight`) as well as for a bare one.
"""
import re

EMBEDDING_NAMES = ("patch_embed", "cls_token", "pos_embed")
# 1-D parameters never get weight decay; these do not either, whatever their shape.
NO_WEIGHT_DECAY_NAMES = ("pos_embed", "cls_token", "relative_position_bias_table", "rel_pos_h", "rel_pos_w")
_BLOCK = re.compile(r"(?:^|\.)blocks\.(\d+)\.")


def layer_id(name: str, num_blocks: int) -> int:
    parts = name.split(".")
    if any(p in EMBEDDING_NAMES for p in parts):
        return 0
    match = _BLOCK.search(name)
    if match:
        return int(match.group(1)) + 1
    return num_blocks + 1


def param_groups(model, weight_decay: float, layer_decay: float = 1.0, num_blocks: int = None,
                 no_weight_decay_names=NO_WEIGHT_DECAY_NAMES):
    """Groups of trainable parameters with "lr_scale" (layer_decay ** (top - layer)) and weight decay.

    num_blocks defaults to the number of `blocks.i` indices found in the model's parameter names.
    Every group carries "lr_scale", "weight_decay", "layer_id" and "param_names"; the trainer
    multiplies the scheduled lr by lr_scale.
    """
    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    if num_blocks is None:
        ids = {int(m.group(1)) for n, _ in named if (m := _BLOCK.search(n))}
        num_blocks = max(ids) + 1 if ids else 0
    groups = {}
    for name, param in named:
        no_decay = param.ndim == 1 or name.endswith(".bias") or any(p in no_weight_decay_names for p in name.split("."))
        lid = layer_id(name, num_blocks)
        key = (lid, no_decay)
        if key not in groups:
            groups[key] = {"params": [], "param_names": [], "layer_id": lid,
                           "weight_decay": 0.0 if no_decay else weight_decay,
                           "lr_scale": layer_decay ** (num_blocks + 1 - lid)}
        groups[key]["params"].append(param)
        groups[key]["param_names"].append(name)
    return [groups[k] for k in sorted(groups)]
