# A CPU-sized UperNet on the tiny MAE encoder of configs/pretrain/mae_vit_tiny_cpu.py (ViT-Tiny width,
# 4 blocks, 8 px patches): 64 px crops, a 5-class generated ADE20K-layout set (tools/make_toy_data.py
# --ade20k), 128-channel heads, batch 4, a few hundred iterations. The recipe otherwise as for ViT-B.
_base_ = ["./upernet_vit_b.py"]
embed_dim, num_classes, crop_size = 192, 5, (64, 64)
data_root = "data/toy/ade/ADEChallengeData2016"
norm_cfg = dict(type="BN", requires_grad=True)
model = dict(
    data_preprocessor=dict(size=crop_size),
    backbone=dict(img_size=64, patch_size=8, embed_dim=embed_dim, depth=4, num_heads=3, drop_path_rate=0.0,
                  out_indices=(0, 1, 2, 3)),
    neck=dict(embed_dim=embed_dim, norm_cfg=norm_cfg),
    decode_head=dict(in_channels=[embed_dim] * 4, channels=128, num_classes=num_classes, norm_cfg=norm_cfg),
    auxiliary_head=dict(in_channels=embed_dim, channels=64, num_classes=num_classes, norm_cfg=norm_cfg),
    test_cfg=dict(mode="slide", crop_size=crop_size, stride=(43, 43)),
)
metainfo = dict(classes=("cross", "star", "arrow", "lshape", "hexagon"),  # reproduction.toy_data.DENSE_CLASSES
                palette=[[230, 25, 75], [60, 180, 75], [0, 130, 200], [245, 130, 48], [145, 30, 180]])
train_pipeline = [
    dict(type="LoadImageFromFile"),
    dict(type="LoadAnnotations", reduce_zero_label=True),
    dict(type="RandomResize", scale=(256, 64), ratio_range=(0.5, 2.0), keep_ratio=True),
    dict(type="RandomCrop", crop_size=crop_size, cat_max_ratio=0.75),
    dict(type="RandomFlip", prob=0.5),
    dict(type="PhotoMetricDistortion"),
    dict(type="PackSegInputs"),
]
test_pipeline = [
    dict(type="LoadImageFromFile"),
    dict(type="Resize", scale=(256, 64), keep_ratio=True),
    dict(type="LoadAnnotations", reduce_zero_label=True),
    dict(type="PackSegInputs"),
]
train_dataloader = dict(batch_size=4, num_workers=0, persistent_workers=False,
                        dataset=dict(type="BaseSegDataset", data_root=data_root, metainfo=metainfo,
                                     img_suffix=".jpg", seg_map_suffix=".png", pipeline=train_pipeline))
val_dataloader = dict(num_workers=0, persistent_workers=False,
                      dataset=dict(type="BaseSegDataset", data_root=data_root, metainfo=metainfo,
                                    img_suffix=".jpg", seg_map_suffix=".png", pipeline=test_pipeline))
test_dataloader = val_dataloader
optim_wrapper = dict(optimizer=dict(lr=4e-4), paramwise_cfg=dict(layer_decay=0.75))
warmup_iters = 30
param_scheduler = [
    dict(type="LinearLR", start_factor=1e-6, by_epoch=False, begin=0, end=warmup_iters),
    dict(type="RunLengthPolyLR", power=1.0, eta_min=0.0, by_epoch=False, begin=warmup_iters),
]
train_cfg = dict(max_iters=300, val_interval=300)
default_hooks = dict(logger=dict(interval=20), checkpoint=dict(interval=100))
env_cfg = dict(cudnn_benchmark=False, dist_cfg=dict(backend="gloo"))
