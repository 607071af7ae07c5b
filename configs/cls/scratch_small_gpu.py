"""The GPU preset's supervised from-scratch baseline (same encoder as small_gpu.py): scratch_tiny_cpu.py's
shortened recipe with a batch of 64."""
import os

from common.config import derive

config = derive(os.path.join(os.path.dirname(__file__), "scratch_tiny_cpu.py"), backbone="vit_small_patch16",
                backbone_overrides=dict(patch_size=8, depth=8), batch_size=64, output_dir="runs/cls/scratch_small_gpu")
