from typing import Any

from torch import nn

from backbones.param_groups import param_groups


def layer_decay_params(model: nn.Module, base_lr: float, weight_decay: float, layer_decay: float,
                       decay_rule: str = "vitdet") -> list[dict[str, Any]]:
    """Detectron2 optimizer params with the shared layer-decay rule: each group's lr is base_lr
    times its scale (Detectron2's LR multiplier then scales every group alike). decay_rule "vitdet"
    exempts what ViTDet's optimizer exempts (torch norm layers, pos_embed), "all" decays everything
    (ViTDet's ViT-H); see backbones.param_groups."""
    groups = param_groups(model, weight_decay, layer_decay, decay_rule=decay_rule)
    for group in groups:
        group["lr"] = base_lr * group["lr_scale"]
    return groups
