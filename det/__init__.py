"""The shared MAE ViT inside Detectron2 (backbone, pyramid adapters, layer-decay optimizer groups)."""
from .backbone import ViTBackbone, build_mae_vit_backbone, vit_fpn, vit_simple_pyramid
from .optim import layer_decay_params

__all__ = ["ViTBackbone", "build_mae_vit_backbone", "layer_decay_params", "vit_fpn", "vit_simple_pyramid"]
