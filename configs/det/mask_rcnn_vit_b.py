"""Mask R-CNN with the MAE ViT-B/16 on COCO (paper Table 4: 50.3 box AP / 44.9 mask AP), with the
paper's A.3 adapter (4 block groups resampled to strides 4-32, then FPN) and ViTDet's recipe, which
the paper's A.3 follows (Detectron2 projects/ViTDet/configs/COCO/mask_rcnn_vitdet_b_100ep.py, "ViTDet-B"
below): large-scale jitter at 1024, AdamW, layer decay 0.7, 100 epochs. ViTDet's simple pyramid
instead: model.backbone = vit_simple_pyramid(...) (see mask_rcnn_vit_b_simple.py). Each value taken
from a reference names it on its line; the README's "Recipes and their sources" lists the differences.

Run length is the one setting train.max_iter: Detectron2's LRMultiplier evaluates lr_multiplier at
iter / train.max_iter, so the milestones and the warm-up below are fractions of the run (ViTDet's
numbers over their num_updates): train.max_iter=N keeps lr x0.1 at 88.9% and x0.01 at 96.3% of N.

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
model = model_zoo.get_config("common/models/mask_rcnn_vitdet.py").model  # ViTDet-B: heads, LN, pixel mean/std
model.backbone = L(vit_fpn)(
    # ViTDet-B's ViT: 1024 px, window 14, relative positions, drop path 0.1, a 14x14 (224 px) position table
    # interpolated in every forward; global attention in the last block of each group (blocks 2, 5, 8, 11, as ViTDet-B)
    vit=L(ViTBackbone)(img_size=image_size, patch_size=16, embed_dim=768, depth=12, num_heads=12, drop_path_rate=0.1,
                       window_size=14, use_rel_pos=True, multi_scale=True, pretrain_img_size=224, init_checkpoint=""),
    out_channels=256,
    square_pad=image_size,
)

# ViTDet's configs/common/coco_loader_lsj.py: flip, large-scale jitter 0.1-2.0 at 1024, batch 64
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
    # ViTDet-B: layer decay 0.7 (get_vit_lr_decay_rate); weight decay as get_default_optimizer_params with
    # weight_decay_norm=0 and overrides {"pos_embed": wd 0} assigns it, parameter by parameter ("vitdet")
    params=L(layer_decay_params)(base_lr="${..lr}", weight_decay="${..weight_decay}", layer_decay=0.7,
                                 decay_rule="vitdet"),
    lr=1e-4,  # ViTDet-B (Detectron2 configs/common/optim.py AdamW)
    betas=(0.9, 0.999),  # ViTDet-B
    weight_decay=0.1,  # ViTDet-B
)

train = model_zoo.get_config("common/train.py").train
train.max_iter = 184375  # ViTDet-B: 100 epochs = 184375 iterations x 64 images / 118k images
train.amp.enabled = True  # ViTDet-B
train.ddp.fp16_compression = True  # ViTDet-B
train.checkpointer.period = 5000  # Detectron2 configs/common/train.py
train.eval_period = 5000  # Detectron2 configs/common/train.py, which ViTDet-B keeps
train.init_checkpoint = ""
train.seed = 0  # Detectron2 seeds every RNG with seed + rank (as the segmentation configs' randomness.seed)
# ViTDet-B: x0.1 at 163889 and x0.01 at 177546 of 184375 iterations, 250 linear warm-up iterations from 0.001;
# fractions of train.max_iter (see the docstring)
lr_multiplier = L(WarmupParamScheduler)(
    scheduler=L(MultiStepParamScheduler)(values=[1.0, 0.1, 0.01], milestones=[163889, 177546], num_updates=184375),
    warmup_length=250 / 184375,
    warmup_factor=0.001,
)
