"""Partial fine-tuning of MAE ViT-B/16 (paper Figure 9): the last `blocks` blocks are tuned, the
rest frozen, with the fine-tuning recipe; blocks=0.5 tunes only the MLP half of the last block.

  tools/train_cls.py --cfg cls/partial_vit_b.py --init ... --blocks 4
"""
import os

from common.config import derive

config = derive(os.path.join(os.path.dirname(__file__), "finetune_vit_b.py"), mode="partial", blocks=1.0,
                output_dir="runs/cls/partial_vit_b")
