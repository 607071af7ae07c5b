"""The GPU preset's MAE (tools/reproduce.py --preset gpu: the whole pipeline on one GPU in minutes):
ViT-S width (384, 6 heads), 8 blocks, 8 px patches, 64 px images, a 4-block 256-d decoder. The
recipe is the paper's, scaled down in epochs and batch; bf16 autocast and torch.compile as on every
GPU (precision and compile 'auto'); the pre-training images are JPEGs, decoded on the GPU."""
from pretrain.config import PretrainConfig

config = PretrainConfig(
    model="mae_vit_small_patch16",
    # 8 blocks: the detection adapter splits the encoder into 4 equal groups (det/backbone.py)
    model_overrides=dict(patch_size=8, depth=8, decoder_embed_dim=256, decoder_depth=4, decoder_num_heads=8),
    input_size=64,
    mask_ratio=0.75,  # paper, Figure 5
    target="norm_pixel",  # paper, Table 1d
    epochs=20,
    warmup_epochs=2,
    batch_size=256,
    blr=1.5e-4 * 4,  # a few thousand steps: 4x the paper's base lr (the CPU config: 8x for 8x smaller batches)
    num_workers=4,  # the gpu backend's workers only read the files and draw the crops
    data_backend="gpu",  # nvJPEG decodes and augments on the GPU (common/gpu_data.py)
    save_every=10,
    vis_every=20,
    output_dir="runs/pretrain/mae_vit_small_gpu",
)
