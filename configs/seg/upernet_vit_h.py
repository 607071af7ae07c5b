# UperNet with the MAE ViT-H/14 (512 px crops, padded to 518: a 37x37 grid): features of blocks 7, 15, 23, 31; 1024
# head channels; drop path 0.3; layer decay 0.95 as for ViT-L (BEiT's large-model recipe).
_base_ = ["./upernet_vit_b.py"]
embed_dim, depth, num_heads = 1280, 32, 16
model = dict(
    backbone=dict(patch_size=14, img_size=518, embed_dim=embed_dim, depth=depth, num_heads=num_heads,
                  drop_path_rate=0.3, out_indices=(7, 15, 23, 31)),
    neck=dict(embed_dim=embed_dim),
    decode_head=dict(in_channels=[embed_dim] * 4, channels=1024),
    auxiliary_head=dict(in_channels=embed_dim),
)
optim_wrapper = dict(paramwise_cfg=dict(layer_decay=0.95))
