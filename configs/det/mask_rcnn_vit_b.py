"""Mask R-CNN with the MAE ViT-B/16 on COCO (paper Table 4: 50.3 box AP / 44.9 mask AP), with the
paper's A.3 adapter (4 block groups resampled to strides 4-32, then FPN) and the published recipe:
large-scale jitter at 1024 (scale 0.1-2.0), AdamW lr 1e-4, betas (0.9, 0.999), wd 0.1, layer decay
0.7, drop path 0.1, 100 epochs (184,375 iterations at batch 64; lr x0.1 at 88.9% and 96.3%; 250
warm-up iterations), AMP. ViTDet's simple pyramid instead: model.backbone = vit_simple_pyramid(...)
(see mask_rcnn_vit_b_simple.py).

  python tools/train_det.py --cfg det/mask_rcnn_vit_b.py --init mae_pretrain_vit_base.pth --num-gpus 8
"""
import detectron2.data.transforms as T
import torch
from detectron2 import model_zoo
from detectron2.config import LazyCall as L
from detectron2.solver import WarmupParamScheduler
from fvcore.common.param_scheduler import MultiStepParamScheduler

from det.backbone import ViTBackbone, vit_fpn
from det.optim import layer_decay_params

image_size = 1024
model = model_zoo.get_config("common/models/mask_rcnn_vitdet.py").model
model.backbone = L(vit_fpn)(
    vit=L(ViTBackbone)(img_size=image_size, patch_size=16, embed_dim=768, depth=12, num_heads=12, drop_path_rate=0.1,
                       window_size=14, use_rel_pos=True, multi_scale=True, init_checkpoint=""),
    out_channels=256,
    square_pad=image_size,
)

dataloader = model_zoo.get_config("common/data/coco.py").dataloader
dataloader.train.mapper.augmentations = [
    L(T.RandomFlip)(horizontal=True),
    L(T.ResizeScale)(min_scale=0.1, max_scale=2.0, target_height=image_size, target_width=image_size),
    L(T.FixedSizeCrop)(crop_size=(image_size, image_size), pad=False),
]
dataloader.train.mapper.image_format = "RGB"
dataloader.train.mapper.recompute_boxes = True
dataloader.train.total_batch_size = 64
dataloader.test.mapper.augmentations = [L(T.ResizeShortestEdge)(short_edge_length=image_size, max_size=image_size)]
dataloader.test.mapper.image_format = "RGB"

optimizer = L(torch.optim.AdamW)(
    params=L(layer_decay_params)(base_lr="${..lr}", weight_decay=0.1, layer_decay=0.7),
    lr=1e-4,
    betas=(0.9, 0.999),
    weight_decay=0.1,
)

train = model_zoo.get_config("common/train.py").train
train.max_iter = 184375
train.amp.enabled = True
train.ddp.fp16_compression = True
train.checkpointer.period = 5000
train.eval_period = 184375
train.init_checkpoint = ""
train.seed = 0  # Detectron2 seeds every RNG with seed + rank (as the segmentation configs' randomness.seed)
lr_multiplier = L(WarmupParamScheduler)(
    scheduler=L(MultiStepParamScheduler)(values=[1.0, 0.1, 0.01], milestones=[163889, 177546], num_updates=train.max_iter),
    warmup_length=250 / train.max_iter,
    warmup_factor=0.001,
)
