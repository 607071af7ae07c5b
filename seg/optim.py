from mmengine.optim import DefaultOptimWrapperConstructor, OptimWrapper
from mmseg.registry import OPTIM_WRAPPER_CONSTRUCTORS, OPTIM_WRAPPERS, OPTIMIZERS
from torch import nn

from backbones.param_groups import param_groups


@OPTIM_WRAPPER_CONSTRUCTORS.register_module()
class LayerDecayOptimWrapperConstructor(DefaultOptimWrapperConstructor):
    """Layer-wise lr decay through the shared rule (backbones.param_groups): paramwise_cfg =
    dict(layer_decay=0.65, decay_rule="1d"). Each group's lr is the base lr times its scale;
    mmengine's schedulers then scale every group alike. decay_rule "1d" (the default) exempts 1-D
    parameters and biases only, as mmseg's and BEiT's LayerDecayOptimizerConstructor do when they run
    (pos_embed, cls_token and the relative position bias tables are decayed); "mae" also exempts
    those tables, as the official MAE fine-tuning does."""

    def __call__(self, model: nn.Module) -> OptimWrapper:
        model = getattr(model, "module", model)
        optimizer_cfg = self.optimizer_cfg.copy()
        weight_decay = optimizer_cfg.pop("weight_decay", 0.0)
        groups = param_groups(model, weight_decay, self.paramwise_cfg.get("layer_decay", 1.0),
                              decay_rule=self.paramwise_cfg.get("decay_rule", "1d"))
        for group in groups:
            group["lr"] = optimizer_cfg["lr"] * group["lr_scale"]
        optimizer = OPTIMIZERS.build(dict(optimizer_cfg, params=groups))
        return OPTIM_WRAPPERS.build(self.optim_wrapper_cfg, default_args=dict(optimizer=optimizer))
