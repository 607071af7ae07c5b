"""Linear probing of the tiny MAE of configs/pretrain/mae_vit_tiny_cpu.py at CPU scale: the recipe of
linprobe_vit_b.py (frozen encoder, cls token, BatchNorm head, LARS, TF-style crop + flip) on the
encoder and data size of tiny_cpu.py. One comment per changed value gives its source. The base lr is
80x the paper's: LARS moves each weight matrix by 0.001 x lr of its norm per step, so the paper's 0.1
at batch 32 (lr 0.0125) would leave the head near its initialisation after the ~300 steps of 100
epochs on the tiny preset's 100 labelled images, where the paper takes ~7,000 steps at lr 6.4."""
import os

from common.config import derive

config = derive(
    os.path.join(os.path.dirname(__file__), "linprobe_vit_b.py"),
    backbone="vit_tiny_patch16",  # tiny_cpu.py (the encoder of mae_vit_tiny_cpu.py)
    backbone_overrides=dict(patch_size=8, depth=4),  # tiny_cpu.py
    input_size=64,  # tiny_cpu.py
    epochs=100,  # the tiny preset's fine-tuning length (reproduction/recipes.py, SCALES["tiny"].cls_epochs)
    warmup_epochs=11,  # linprobe_vit_b.py's 10 of 90 epochs, scaled (as the ablations preset sets it)
    batch_size=32,  # tiny_cpu.py
    total_batch_size=0,  # tiny_cpu.py: no accumulation over a few hundred images
    blr=8.0,  # tests/test_cls_engine.py's linear probe of a tiny MAE (42% top-1 after 96 steps; chance 20%)
    num_workers=2,  # tiny_cpu.py
    save_every=50,  # tiny_cpu.py's checkpoint twice a run
    output_dir="runs/cls/linprobe_tiny_cpu",
)
