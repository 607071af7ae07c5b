"""Linear probing of an MAE ViT-B/16 (paper A.2, Table 10): frozen encoder, cls-token features,
BatchNorm without affine parameters before the linear head, LARS (base lr 0.1, momentum 0.9,
wd 0), batch 16384 (gradient accumulation), 90 epochs, 10 warm-up, the official TF-style
RandomResizedCrop + flip. Sources: the official code, facebookresearch/mae (main_linprobe.py)."""
from cls_transfer.config import ClsConfig

config = ClsConfig(
    backbone="vit_base_patch16",
    mode="linprobe",
    optimizer="lars",  # main_linprobe.py: util/lars.py (cls_transfer/lars.py)
    epochs=90,  # main_linprobe.py default (FINETUNE.md, linear probing)
    warmup_epochs=10,  # main_linprobe.py default
    batch_size=512,  # official: 512 x 4 nodes x 8 GPUs
    total_batch_size=16384,  # official: 512 x 4 nodes x 8 GPUs
    blr=0.1,  # main_linprobe.py default
    min_lr=0.0,  # main_linprobe.py default
    weight_decay=0.0,  # main_linprobe.py default
    momentum=0.9,  # util/lars.py default
    drop_path=0.0,
    auto_augment="",
    reprob=0.0,
    mixup=0.0,
    cutmix=0.0,
    smoothing=0.0,
    output_dir="runs/cls/linprobe_vit_b",
)
