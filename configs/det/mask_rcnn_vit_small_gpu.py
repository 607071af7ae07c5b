"""The GPU preset's Mask R-CNN on configs/pretrain/mae_vit_small_gpu.py's encoder (ViT-S width, 8 blocks,
8 px patches): mask_rcnn_vit_tiny.py's 128 px images and light heads, a batch of 16 and AMP (fp16, as
ViTDet-B)."""

from .mask_rcnn_vit_tiny import dataloader, lr_multiplier, model, optimizer, train

model.backbone.vit.update(embed_dim=384, depth=8, num_heads=6)  # global attention in blocks 1, 3, 5, 7
dataloader.train.total_batch_size = 16
dataloader.train.num_workers = 2
train.amp.enabled = True  # ViTDet-B
