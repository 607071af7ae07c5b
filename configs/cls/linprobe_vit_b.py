"""Linear probing of an MAE ViT-B/16 (paper A.2, Table 10): frozen encoder, cls-token features,
BatchNorm without affine parameters before the linear head, LARS (base lr 0.1, momentum 0.9,
wd 0), batch 16384 (gradient accumulation), 90 epochs, 10 warm-up, RandomResizedCrop + flip."""
from cls_transfer.config import ClsConfig

config = ClsConfig(
    backbone="vit_base_patch16",
    mode="linprobe",
    optimizer="lars",
    epochs=90,
    warmup_epochs=10,
    batch_size=512,
    total_batch_size=16384,
    blr=0.1,
    min_lr=0.0,
    weight_decay=0.0,
    momentum=0.9,
    drop_path=0.0,
    auto_augment="",
    reprob=0.0,
    mixup=0.0,
    cutmix=0.0,
    smoothing=0.0,
    output_dir="runs/cls/linprobe_vit_b",
)
