"""The GPU preset's fine-tuning of configs/pretrain/mae_vit_small_gpu.py's encoder (ViT-S width, 8 blocks,
8 px patches, 64 px): tiny_cpu.py's shortened recipe with a batch of 64."""
import os

from common.config import derive

config = derive(os.path.join(os.path.dirname(__file__), "tiny_cpu.py"), backbone="vit_small_patch16",
                backbone_overrides=dict(patch_size=8, depth=8), batch_size=64, output_dir="runs/cls/small_gpu")
