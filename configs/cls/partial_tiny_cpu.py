"""Partial fine-tuning (paper Figure 9) of the tiny MAE at CPU scale: tiny_cpu.py's recipe with the
last `blocks` blocks tuned and the rest frozen, as partial_vit_b.py does for finetune_vit_b.py.

  tools/train_cls.py --cfg cls/partial_tiny_cpu.py --init ... --blocks 0.5   # the MLP half of the last block
"""
import os

from common.config import derive

config = derive(
    os.path.join(os.path.dirname(__file__), "tiny_cpu.py"),
    mode="partial",  # partial_vit_b.py
    blocks=1.0,  # partial_vit_b.py (the ablations preset sets 0.5, 1, 2, 3)
    output_dir="runs/cls/partial_tiny_cpu",
)
