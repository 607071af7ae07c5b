"""Fine-tuning MAE ViT-H/14: the ViT-B recipe with blr 1e-3, layer decay 0.75, drop path 0.3,
50 epochs (official values). Paper, ImageNet-1K top-1: 86.9."""
import os

from common.config import derive

# FINETUNE.md ViT-H: blr 1e-3, layer decay 0.75, drop path 0.3, 50 epochs (batch 16 x 64 GPUs = 1024, here 32 x 32)
config = derive(os.path.join(os.path.dirname(__file__), "finetune_vit_b.py"), backbone="vit_huge_patch14",
                blr=1e-3, layer_decay=0.75, drop_path=0.3, epochs=50, output_dir="runs/cls/finetune_vit_h")
