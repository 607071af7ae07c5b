"""MAE ViT-Large pre-training: the recipe of mae_vit_base.py (the paper's, the same for every size).

  torchrun --nproc_per_node 8 tools/pretrain.py --cfg pretrain/mae_vit_large.py --data /data/imagenet
"""
import os

from common.config import derive

config = derive(os.path.join(os.path.dirname(__file__), "mae_vit_base.py"), model="mae_vit_large_patch16",
                output_dir="runs/pretrain/mae_vit_large")
