"""MAE ViT-Base pre-training, the paper's recipe (Table 8): 1600 epochs (800 for the ablations),
batch 4096 (gradient accumulation makes it up on fewer GPUs), blr 1.5e-4, AdamW (0.9, 0.95),
wd 0.05, 40 warm-up epochs, cosine decay, mask 75%, normalised-pixel target.

  torchrun --nproc_per_node 8 tools/pretrain.py --cfg pretrain/mae_vit_base.py --data /data/imagenet
"""
from pretrain.config import PretrainConfig

config = PretrainConfig(
    model="mae_vit_base_patch16",
    input_size=224,
    mask_ratio=0.75,
    target="norm_pixel",
    epochs=1600,
    warmup_epochs=40,
    batch_size=64,
    total_batch_size=4096,
    blr=1.5e-4,
    weight_decay=0.05,
    betas=(0.9, 0.95),
    output_dir="runs/pretrain/mae_vit_base",
)
