"""Mask R-CNN with the MAE ViT-B/16 and ViTDet's simple feature pyramid (Detectron2's
SimpleFeaturePyramid on the last map), for comparison with the A.3 adapter; the same recipe."""
import os

from detectron2.config import LazyCall as L
from detectron2.config import LazyConfig

from det.backbone import ViTBackbone, vit_simple_pyramid

_base = LazyConfig.load(os.path.join(os.path.dirname(__file__), "mask_rcnn_vit_b.py"))
model, dataloader, optimizer, train, lr_multiplier = (_base.model, _base.dataloader, _base.optimizer, _base.train,
                                                      _base.lr_multiplier)
vit = dict(model.backbone.vit)
vit.pop("_target_")
model.backbone = L(vit_simple_pyramid)(vit=L(ViTBackbone)(**dict(vit, multi_scale=False)), out_channels=256,
                                       square_pad=model.backbone.square_pad)
