"""Fine-tuning MAE ViT-L/16: the ViT-B recipe with blr 1e-3, layer decay 0.75, drop path 0.2,
50 epochs (official values). Paper, ImageNet-1K top-1: 85.9."""
import os

from common.config import derive

# FINETUNE.md ViT-L: blr 1e-3, layer decay 0.75, drop path 0.2, 50 epochs (batch 32 x 32 GPUs = 1024)
config = derive(os.path.join(os.path.dirname(__file__), "finetune_vit_b.py"), backbone="vit_large_patch16",
                blr=1e-3, layer_decay=0.75, drop_path=0.2, epochs=50, output_dir="runs/cls/finetune_vit_l")
