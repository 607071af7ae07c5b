"""End-to-end fine-tuning of an MAE ViT-B/16 (paper Table 9, official per-size values): 100 epochs,
batch 1024, blr 5e-4 (lr = blr x batch / 256), layer decay 0.65, drop path 0.1, 5 warm-up epochs,
cosine, AdamW (0.9, 0.999), wd 0.05, RandAug (9, 0.5), label smoothing 0.1, mixup 0.8, cutmix 1.0,
random erasing 0.25, global average pooling. Paper, ImageNet-1K top-1: 83.6.

  torchrun --nproc_per_node 8 tools/train_cls.py --cfg cls/finetune_vit_b.py --init mae_pretrain_vit_base.pth \
      --dataset imagenet --data-root /data/imagenet
"""
from cls_transfer.config import ClsConfig

config = ClsConfig(
    backbone="vit_base_patch16",
    mode="finetune",
    input_size=224,
    epochs=100,
    warmup_epochs=5,
    batch_size=32,
    total_batch_size=1024,
    blr=5e-4,
    min_lr=1e-6,
    layer_decay=0.65,
    drop_path=0.1,
    weight_decay=0.05,
    betas=(0.9, 0.999),
    auto_augment="rand-m9-mstd0.5-inc1",
    reprob=0.25,
    mixup=0.8,
    cutmix=1.0,
    smoothing=0.1,
    output_dir="runs/cls/finetune_vit_b",
)
