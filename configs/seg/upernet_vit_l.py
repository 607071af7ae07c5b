# UperNet with the MAE ViT-L/16: features of blocks 7, 11, 15, 23; 1024 channels; drop path 0.2.
# Layer decay 0.95: the value of BEiT's published ADE20K recipe for its ViT-L (Bao et al. 2021,
# semantic_segmentation configs of the BEiT repository); the MAE paper gives no per-size value.
# Paper, Table 5: mIoU 53.6.
_base_ = ["./upernet_vit_b.py"]
embed_dim, depth, num_heads = 1024, 24, 16
model = dict(
    backbone=dict(embed_dim=embed_dim, depth=depth, num_heads=num_heads, drop_path_rate=0.2, out_indices=(7, 11, 15, 23)),
    neck=dict(embed_dim=embed_dim),
    decode_head=dict(in_channels=[embed_dim] * 4, channels=1024),
    auxiliary_head=dict(in_channels=embed_dim),
)
optim_wrapper = dict(paramwise_cfg=dict(layer_decay=0.95))
