# UperNet with the MAE ViT-L/16 (paper Table 5: mIoU 53.6): the ViT-B recipe with ViT-L's blocks 7, 11, 15, 23, 1024 head
# channels and drop path 0.2 (BEiT's semantic_segmentation upernet_beit_large_24_512_slide_160k_ade20k_pt2ft.py).
# lr and layer decay have no reference for a self-supervised-only ViT-L: BEiT's large recipe (0.95 at lr 2e-5) is for
# checkpoints intermediate-fine-tuned on ImageNet, BEiT's self-supervised-only recipe (ViT-B) uses 0.65 at 7e-4, and the
# paper (A.4) searched the lr per entry. Defaults: lr 1e-4 (mmseg-MAE's ViT-B) and layer decay 0.75 (the official MAE's
# ImageNet fine-tuning value for ViT-L and ViT-H). The search grid, 9 runs, one row each in runs/sweep/summary.csv:
#   python tools/sweep.py --tool seg --cfg seg/upernet_vit_l.py --out runs/sweep/seg_l \
#       optim_wrapper.optimizer.lr=5e-5,1e-4,2e-4 optim_wrapper.paramwise_cfg.layer_decay=0.75,0.85,0.95 \
#       -- --init mae_pretrain_vit_large.pth --data-root /data/ade/ADEChallengeData2016
_base_ = ["./upernet_vit_b.py"]
embed_dim, depth, num_heads = 1024, 24, 16
model = dict(
    backbone=dict(embed_dim=embed_dim, depth=depth, num_heads=num_heads, drop_path_rate=0.2, out_indices=(7, 11, 15, 23)),
    neck=dict(embed_dim=embed_dim),
    decode_head=dict(in_channels=[embed_dim] * 4, channels=1024),
    auxiliary_head=dict(in_channels=embed_dim),
)
optim_wrapper = dict(paramwise_cfg=dict(layer_decay=0.75))  # no reference: see above
