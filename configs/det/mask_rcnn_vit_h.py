"""Mask R-CNN with the MAE ViT-H (layer decay 0.9, drop path 0.5, otherwise the ViT-B recipe).
The detector runs ViT-H with 16 px patches so that the pyramid has strides 4-32: loading a ViT-H/14
checkpoint resamples its 14x14 patch-embedding kernel to 16x16 (bicubic) and its position
embeddings to the 64x64 grid, as ViTDet does; the load report lists both."""
import os

from detectron2.config import LazyConfig

_base = LazyConfig.load(os.path.join(os.path.dirname(__file__), "mask_rcnn_vit_b.py"))
model, dataloader, optimizer, train, lr_multiplier = (_base.model, _base.dataloader, _base.optimizer, _base.train,
                                                      _base.lr_multiplier)
model.backbone.vit.update(patch_size=16, embed_dim=1280, depth=32, num_heads=16, drop_path_rate=0.5)
optimizer.params.layer_decay = 0.9
