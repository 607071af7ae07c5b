"""The supervised from-scratch baseline at the CPU scale of tiny_cpu.py (same encoder: ViT-Tiny width,
8 px patches, 64 px): the recipe of scratch_vit_b.py (no layer decay, wd 0.3, betas (0.9, 0.95)),
shortened like tiny_cpu.py. No EMA: over a few hundred steps an EMA at 0.9999 would stay at the
initial weights."""
import os

from common.config import derive

config = derive(os.path.join(os.path.dirname(__file__), "scratch_vit_b.py"), backbone="vit_tiny_patch16",
                backbone_overrides=dict(patch_size=8, depth=4), input_size=64, epochs=20, warmup_epochs=2,
                batch_size=32, total_batch_size=0, blr=4e-3, drop_path=0.0, ema_decay=0.0, mixup=0.0, cutmix=0.0,
                reprob=0.0, num_workers=2, save_every=5, output_dir="runs/cls/scratch_tiny_cpu")
