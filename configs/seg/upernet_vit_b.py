# UperNet with the MAE ViT-B/16 on ADE20K (paper A.4, which follows BEiT's semantic_segmentation code), the
# recipe of mmseg 1.2.2's configs/mae/mae-base_upernet_8xb2-amp-160k_ade20k-512x512.py ("mmseg-MAE" below) except
# where a line says otherwise; the README's "Recipes and their sources" lists each difference. Paper, Table 5: 48.1.
# Run length is the one setting train_cfg.max_iters: the poly decay has no `end`, so the runner ends it at max_iters.
#   torchrun --nproc_per_node 8 tools/train_seg.py --cfg seg/upernet_vit_b.py --init mae_pretrain_vit_base.pth \
#       data_root=/data/ade/ADEChallengeData2016
custom_imports = dict(imports=["seg"], allow_failed_imports=False)
default_scope = "mmseg"

embed_dim, depth, num_heads, patch_size = 768, 12, 12, 16
out_indices = (3, 5, 7, 11)
num_classes = 150
crop_size = (512, 512)  # mmseg-MAE
data_root = "data/ade/ADEChallengeData2016"
norm_cfg = dict(type="SyncBN", requires_grad=True)  # mmseg-MAE; tools/train_seg.py uses BN in a single-process run

model = dict(
    type="EncoderDecoder",
    data_preprocessor=dict(type="SegDataPreProcessor", mean=[123.675, 116.28, 103.53], std=[58.395, 57.12, 57.375],
                           bgr_to_rgb=True, pad_val=0, seg_pad_val=255, size=crop_size),
    # mmseg-MAE's backbone: 512 px, drop path 0.1, blocks 3, 5, 7, 11, zero-initialised relative position bias,
    # without mmseg's layer scales (gamma_1/2, initialised to 1.0 there): the official MAE encoder has none
    backbone=dict(type="MAEViT", img_size=crop_size[0], patch_size=patch_size, embed_dim=embed_dim, depth=depth,
                  num_heads=num_heads, drop_path_rate=0.1, out_indices=out_indices, rel_pos="bias",
                  # the checkpoint: --init or mmengine's model.backbone.init_cfg.checkpoint=PATH, both through the strict MAE mapping
                  init_cfg=dict(type="Pretrained", checkpoint=None)),
    neck=dict(type="MultiScaleNeck", embed_dim=embed_dim, scales=(4, 2, 1, 0.5), norm_cfg=norm_cfg),  # mmseg-MAE's Feature2Pyramid
    # mmseg-MAE's heads (mmseg configs/_base_/models/upernet_mae.py with the MAE config's channels)
    decode_head=dict(type="UPerHead", in_channels=[embed_dim] * 4, in_index=[0, 1, 2, 3], pool_scales=(1, 2, 3, 6),
                     channels=768, dropout_ratio=0.1, num_classes=num_classes, norm_cfg=norm_cfg, align_corners=False,
                     loss_decode=dict(type="CrossEntropyLoss", use_sigmoid=False, loss_weight=1.0)),
    auxiliary_head=dict(type="FCNHead", in_channels=embed_dim, in_index=2, channels=256, num_convs=1,
                        concat_input=False, dropout_ratio=0.1, num_classes=num_classes, norm_cfg=norm_cfg,
                        align_corners=False, loss_decode=dict(type="CrossEntropyLoss", use_sigmoid=False, loss_weight=0.4)),
    train_cfg=dict(),
    test_cfg=dict(mode="slide", crop_size=crop_size, stride=(341, 341)),  # mmseg-MAE
)

# mmseg's configs/_base_/datasets/ade20k.py; label 0 ("other") is ignored (reduce_zero_label)
dataset_type = "ADE20KDataset"
train_pipeline = [
    dict(type="LoadImageFromFile"),
    dict(type="LoadAnnotations", reduce_zero_label=True),
    dict(type="RandomResize", scale=(2048, 512), ratio_range=(0.5, 2.0), keep_ratio=True),
    dict(type="RandomCrop", crop_size=crop_size, cat_max_ratio=0.75),
    dict(type="RandomFlip", prob=0.5),
    dict(type="PhotoMetricDistortion"),
    dict(type="PackSegInputs"),
]
test_pipeline = [
    dict(type="LoadImageFromFile"),
    dict(type="Resize", scale=(2048, 512), keep_ratio=True),
    dict(type="LoadAnnotations", reduce_zero_label=True),
    dict(type="PackSegInputs"),
]
train_dataloader = dict(  # batch 2 per GPU on 8 GPUs: 16 (mmseg-MAE; paper A.4)
    batch_size=2, num_workers=4, persistent_workers=True, sampler=dict(type="InfiniteSampler", shuffle=True),
    dataset=dict(type=dataset_type, data_root=data_root, reduce_zero_label=True,
                 data_prefix=dict(img_path="images/training", seg_map_path="annotations/training"), pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=1, num_workers=4, persistent_workers=True, sampler=dict(type="DefaultSampler", shuffle=False),
    dataset=dict(type=dataset_type, data_root=data_root, reduce_zero_label=True,
                 data_prefix=dict(img_path="images/validation", seg_map_path="annotations/validation"), pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(type="IoUMetric", iou_metrics=["mIoU"])
test_evaluator = val_evaluator

optim_wrapper = dict(
    type="OptimWrapper",  # tools/train_seg.py --amp switches to AmpOptimWrapper (GPUs)
    optimizer=dict(type="AdamW", lr=1e-4, betas=(0.9, 0.999), weight_decay=0.05),  # mmseg-MAE
    constructor="LayerDecayOptimWrapperConstructor",
    # mmseg-MAE: layer decay 0.65; decay_rule "1d" decays pos_embed, cls_token and the relative position bias tables,
    # as mmseg's LayerDecayOptimizerConstructor (and BEiT's) do when they run (tests/test_parity_seg.py, per parameter)
    paramwise_cfg=dict(layer_decay=0.65, decay_rule="1d"),
)
# Paper A.4: 100 epochs at batch 16 on ADE20K's 20,210 training images, 20210 * 100 // 16 iterations (mmseg-MAE and
# BEiT: 160k). Warm-up: 1500 iterations from 1e-6, then linear ("poly", power 1) decay to 0 (mmseg-MAE).
warmup_iters = 1500
param_scheduler = [
    dict(type="LinearLR", start_factor=1e-6, by_epoch=False, begin=0, end=warmup_iters),
    # mmseg-MAE's PolyLR, its end left to the runner: train_cfg.max_iters (seg/schedule.py)
    dict(type="RunLengthPolyLR", power=1.0, eta_min=0.0, by_epoch=False, begin=warmup_iters),
]
train_cfg = dict(type="IterBasedTrainLoop", max_iters=126312, val_interval=16000)  # mmseg-MAE: evaluation every 16k
val_cfg = dict(type="ValLoop")
test_cfg = dict(type="TestLoop")

default_hooks = dict(
    timer=dict(type="IterTimerHook"),
    logger=dict(type="LoggerHook", interval=50, log_metric_by_epoch=False),
    param_scheduler=dict(type="ParamSchedulerHook"),
    checkpoint=dict(type="CheckpointHook", by_epoch=False, interval=16000, max_keep_ckpts=3),  # mmseg: every 16k
    sampler_seed=dict(type="DistSamplerSeedHook"),
    visualization=dict(type="SegVisualizationHook"),
)
env_cfg = dict(cudnn_benchmark=True, mp_cfg=dict(mp_start_method="fork", opencv_num_threads=0), dist_cfg=dict(backend="nccl"))
vis_backends = [dict(type="LocalVisBackend"), dict(type="TensorboardVisBackend")]
visualizer = dict(type="SegLocalVisualizer", vis_backends=vis_backends, name="visualizer")
log_processor = dict(by_epoch=False)
log_level = "INFO"
randomness = dict(seed=0)
load_from = None
resume = False
