"""Mask R-CNN with the MAE ViT-H: the ViT-B recipe with ViTDet-H's values (Detectron2
projects/ViTDet/configs/COCO/mask_rcnn_vitdet_h_75ep.py): 75 epochs, layer decay 0.9, drop path 0.5,
weight decay on every parameter.
The detector runs ViT-H with 16 px patches so that the pyramid has strides 4-32: loading a ViT-H/14
checkpoint resamples its 14x14 patch-embedding kernel to 16x16 (bicubic) and its 16x16 position table
to the 14x14 table of 224 px at 16 px (ViTDet's mae_pretrain_vit_huge_p14to16.pth); the load report
lists both."""
from .mask_rcnn_vit_b import dataloader, lr_multiplier, model, optimizer, train

# ViTDet-H: 32 blocks of width 1280, 16 heads, drop path 0.5; global attention in blocks 7, 15, 23, 31 (the group ends)
model.backbone.vit.update(patch_size=16, embed_dim=1280, depth=32, num_heads=16, drop_path_rate=0.5)
optimizer.params.layer_decay = 0.9  # ViTDet-H
optimizer.params.decay_rule = "all"  # ViTDet-H: weight_decay_norm=None and no overrides decay every parameter
train.max_iter = 138281  # ViTDet-H: 75 epochs, 184375 * 3 // 4
# ViTDet-H: milestones 163889 * 3 // 4 and 177546 * 3 // 4; ViTDet-H keeps ViTDet-B's warm-up fraction 250 / 184375
# (187.5 of its 138281 iterations), which the base config's warmup_length already is
lr_multiplier.scheduler.milestones = [122916, 133159]
lr_multiplier.scheduler.num_updates = 138281
