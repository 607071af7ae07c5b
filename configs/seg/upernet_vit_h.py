# UperNet with the MAE ViT-H/14 (512 px crops, padded to 518: a 37x37 grid): features of blocks 7, 15, 23, 31 (the ends
# of 4 equal groups, as ViT-L's 7, 11, 15, 23 are not), 1024 head channels, drop path 0.3. No reference recipe exists
# for ViT-H; lr 1e-4 and layer decay 0.75 as for ViT-L (see upernet_vit_l.py for why). The search grid, 9 runs:
#   python tools/sweep.py --tool seg --cfg seg/upernet_vit_h.py --out runs/sweep/seg_h \
#       optim_wrapper.optimizer.lr=5e-5,1e-4,2e-4 optim_wrapper.paramwise_cfg.layer_decay=0.75,0.85,0.95 \
#       -- --init mae_pretrain_vit_huge.pth --data-root /data/ade/ADEChallengeData2016
_base_ = ["./upernet_vit_b.py"]
embed_dim, depth, num_heads = 1280, 32, 16
model = dict(
    backbone=dict(patch_size=14, img_size=518, embed_dim=embed_dim, depth=depth, num_heads=num_heads,
                  drop_path_rate=0.3, out_indices=(7, 15, 23, 31)),
    neck=dict(embed_dim=embed_dim),
    decode_head=dict(in_channels=[embed_dim] * 4, channels=1024),
    auxiliary_head=dict(in_channels=embed_dim),
)
optim_wrapper = dict(paramwise_cfg=dict(layer_decay=0.75))  # no reference: see above
