"""End-to-end fine-tuning of an MAE ViT-B/16 (paper Table 9, official per-size values): 100 epochs,
batch 1024, blr 5e-4 (lr = blr x batch / 256), layer decay 0.65, drop path 0.1, 5 warm-up epochs,
cosine, AdamW (0.9, 0.999), wd 0.05, RandAug (9, 0.5), label smoothing 0.1, mixup 0.8, cutmix 1.0,
random erasing 0.25, global average pooling. Paper, ImageNet-1K top-1: 83.6. Sources: the official
code, facebookresearch/mae (FINETUNE.md and main_finetune.py's defaults).

  torchrun --nproc_per_node 8 tools/train_cls.py --cfg cls/finetune_vit_b.py --init mae_pretrain_vit_base.pth \
      --dataset imagenet --data-root /data/imagenet
"""
from cls_transfer.config import ClsConfig

config = ClsConfig(
    backbone="vit_base_patch16",
    mode="finetune",
    input_size=224,
    epochs=100,  # FINETUNE.md ViT-B
    warmup_epochs=5,  # main_finetune.py default
    batch_size=32,  # FINETUNE.md (x 32 GPUs)
    total_batch_size=1024,  # FINETUNE.md ViT-B: 32 x 4 nodes x 8 GPUs
    blr=5e-4,  # FINETUNE.md ViT-B
    min_lr=1e-6,  # main_finetune.py default
    layer_decay=0.65,  # FINETUNE.md ViT-B
    drop_path=0.1,  # FINETUNE.md ViT-B
    weight_decay=0.05,  # FINETUNE.md ViT-B
    betas=(0.9, 0.999),  # main_finetune.py: AdamW defaults
    auto_augment="rand-m9-mstd0.5-inc1",  # main_finetune.py default
    reprob=0.25,  # FINETUNE.md ViT-B
    mixup=0.8,  # FINETUNE.md ViT-B
    cutmix=1.0,  # FINETUNE.md ViT-B
    smoothing=0.1,  # main_finetune.py default
    output_dir="runs/cls/finetune_vit_b",
)
