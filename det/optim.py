from backbones.param_groups import param_groups


def layer_decay_params(model, base_lr, weight_decay, layer_decay):
    """Detectron2 optimizer params with the shared layer-decay rule: each group's lr is base_lr
    times its scale (Detectron2's LR multiplier then scales every group alike)."""
    groups = param_groups(model, weight_decay, layer_decay)
    for group in groups:
        group["lr"] = base_lr * group["lr_scale"]
    return groups
