"""Supervised ViT-B/16 from scratch (paper A.2, Table 11, the "scratch" row of Table 3, 82.3):
AdamW (0.9, 0.95), blr 1e-4, wd 0.3, batch 4096, 300 epochs, 20 warm-up, cosine, RandAug (9, 0.5),
label smoothing 0.1, mixup 0.8, cutmix 1.0, drop path 0.1, EMA 0.9999, no layer decay."""
import os

from common.config import derive

# paper A.2, Table 11 (the official code has no from-scratch recipe)
config = derive(os.path.join(os.path.dirname(__file__), "finetune_vit_b.py"), mode="scratch",
                blr=1e-4, weight_decay=0.3, betas=(0.9, 0.95), total_batch_size=4096, epochs=300,
                warmup_epochs=20, layer_decay=1.0, drop_path=0.1, ema_decay=0.9999, output_dir="runs/cls/scratch_vit_b")
