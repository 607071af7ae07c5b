# The GPU preset's UperNet on configs/pretrain/mae_vit_small_gpu.py's encoder (ViT-S width, 8 blocks, 8 px
# patches): upernet_vit_tiny.py's 64 px crops and heads, a batch of 16, NCCL; AMP is train_seg.py's --amp
# (mmengine's AmpOptimWrapper, as mmseg-MAE), which the preset passes where there is a GPU.
_base_ = ["./upernet_vit_tiny.py"]
embed_dim = 384
model = dict(backbone=dict(embed_dim=embed_dim, depth=8, num_heads=6, out_indices=(1, 3, 5, 7)),
             neck=dict(embed_dim=embed_dim), decode_head=dict(in_channels=[embed_dim] * 4),
             auxiliary_head=dict(in_channels=embed_dim))
train_dataloader = dict(batch_size=16, num_workers=2)
env_cfg = dict(dist_cfg=dict(backend="nccl"))  # tools/train_seg.py uses gloo where there is no GPU
