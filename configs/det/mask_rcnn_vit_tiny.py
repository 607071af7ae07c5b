"""A CPU-sized Mask R-CNN on the tiny MAE encoder (ViT-Tiny width, 8 px patches): 128 px images,
light heads, batch 4, a few hundred iterations, generated COCO-format data
(tools/make_toy_data.py --coco, registered as toy_coco_train / toy_coco_val by tools/train_det.py
--dataset). The recipe otherwise follows mask_rcnn_vit_b.py."""

import detectron2.data.transforms as T
from detectron2.config import LazyCall as L
from detectron2.layers import ShapeSpec

from .mask_rcnn_vit_b import dataloader, lr_multiplier, model, optimizer, train

image_size = 128
model.backbone.vit.update(img_size=image_size, patch_size=8, embed_dim=192, depth=4, num_heads=3, drop_path_rate=0.0,
                          window_size=4, pretrain_img_size=64)  # the tiny MAE's 64 px table, interpolated per forward
model.backbone.update(out_channels=64, square_pad=image_size)  # 64-channel FPN and heads: CPU-sized
model.proposal_generator.head.in_channels = 64
model.proposal_generator.anchor_generator.sizes = [[16], [32], [64], [128], [256]]
model.roi_heads.box_head.input_shape = ShapeSpec(channels=64, height=7, width=7)
model.roi_heads.box_head.fc_dims = [256]
model.roi_heads.box_predictor.input_shape = ShapeSpec(channels=256)
model.roi_heads.mask_head.input_shape = ShapeSpec(channels=64, width=14, height=14)
model.proposal_generator.batch_size_per_image = 64
model.proposal_generator.post_nms_topk = (200, 100)
model.roi_heads.batch_size_per_image = 64
model.roi_heads.num_classes = 5
model.roi_heads.box_head.conv_dims = [64, 64]
model.roi_heads.mask_head.conv_dims = [64, 64]
dataloader.train.dataset.names = "toy_coco_train"
dataloader.test.dataset.names = "toy_coco_val"
dataloader.train.mapper.augmentations = [
    L(T.RandomFlip)(horizontal=True),
    L(T.ResizeScale)(min_scale=0.5, max_scale=1.5, target_height=image_size, target_width=image_size),
    L(T.FixedSizeCrop)(crop_size=(image_size, image_size), pad=False),
]
dataloader.test.mapper.augmentations = [L(T.ResizeShortestEdge)(short_edge_length=image_size, max_size=image_size)]
dataloader.train.total_batch_size = 4
dataloader.train.num_workers = 0
dataloader.test.num_workers = 0
optimizer.lr = 4e-4
optimizer.params.layer_decay = 0.75
train.max_iter = 300
train.amp.enabled = False
train.ddp.fp16_compression = False
train.checkpointer.period = 100
train.eval_period = 300  # once, at the end
train.log_period = 20
lr_multiplier.warmup_length = 25 / 300  # 25 iterations: ViTDet's 250 / 184375 would be under one here
# the milestones stay ViTDet's fractions of the run (88.9%, 96.3%): iterations 267 and 289 of 300
