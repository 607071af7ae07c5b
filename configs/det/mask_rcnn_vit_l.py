"""Mask R-CNN with the MAE ViT-L/16 (paper Table 4: 53.3 box AP / 47.2 mask AP): the ViT-B recipe with
ViTDet-L's values (Detectron2 projects/ViTDet/configs/COCO/mask_rcnn_vitdet_l_100ep.py)."""
from .mask_rcnn_vit_b import dataloader, lr_multiplier, model, optimizer, train

# ViTDet-L: 24 blocks of width 1024, 16 heads, drop path 0.4; global attention in blocks 5, 11, 17, 23 (the group ends)
model.backbone.vit.update(embed_dim=1024, depth=24, num_heads=16, drop_path_rate=0.4)
optimizer.params.layer_decay = 0.8  # ViTDet-L
