"""A CPU-sized fine-tuning of the tiny MAE of configs/pretrain/mae_vit_tiny_cpu.py (same encoder:
ViT-Tiny width, 4 blocks, 8 px patches, 64 px). The fine-tuning recipe, shortened, with mixup,
cutmix and random erasing off so that a few hundred steps learn something."""
import os

from common.config import derive

config = derive(os.path.join(os.path.dirname(__file__), "finetune_vit_b.py"), backbone="vit_tiny_patch16",
                backbone_overrides=dict(patch_size=8, depth=4), input_size=64, epochs=10, warmup_epochs=1,
                batch_size=32, total_batch_size=0, blr=4e-3, layer_decay=0.75, drop_path=0.0, mixup=0.0,
                cutmix=0.0, reprob=0.0, num_workers=2, save_every=5, output_dir="runs/cls/tiny_cpu")
