"""Mask R-CNN with the MAE ViT-B/16 and ViTDet's simple feature pyramid (Detectron2's
SimpleFeaturePyramid on the last map), for comparison with the A.3 adapter; the same recipe."""

from detectron2.config import LazyCall as L

from det.backbone import ViTBackbone, vit_simple_pyramid

from .mask_rcnn_vit_b import dataloader, lr_multiplier, model, optimizer, train

vit = dict(model.backbone.vit)
vit.pop("_target_")
model.backbone = L(vit_simple_pyramid)(vit=L(ViTBackbone)(**dict(vit, multi_scale=False)), out_channels=256,
                                       square_pad=model.backbone.square_pad)
