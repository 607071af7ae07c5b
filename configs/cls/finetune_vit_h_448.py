"""Fine-tuning MAE ViT-H/14 at 448 px (position embeddings resampled from 224). Paper top-1: 87.8."""
import os

from common.config import derive

# evaluation at 448: resize 448, centre crop 448 (the official util/datasets.py: crop ratio 1.0 above 224 px)
config = derive(os.path.join(os.path.dirname(__file__), "finetune_vit_h.py"), input_size=448,
                output_dir="runs/cls/finetune_vit_h_448")
