"""A tiny MAE for one CPU machine (the demo and tests): ViT-Tiny width, 64 px images, 8 px patches,
a 2-block 128-d decoder. The recipe is the paper's, scaled down in epochs and batch."""
from pretrain.config import PretrainConfig

config = PretrainConfig(
    model="mae_vit_tiny_patch16",
    model_overrides=dict(patch_size=8, depth=4, decoder_embed_dim=128, decoder_depth=2, decoder_num_heads=4),
    input_size=64,
    mask_ratio=0.75,
    target="norm_pixel",
    epochs=60,
    warmup_epochs=5,
    batch_size=32,
    blr=1.5e-4 * 8,  # small batches need a larger base lr to move in a few hundred steps
    num_workers=2,
    save_every=20,
    vis_every=20,
    output_dir="runs/pretrain/mae_vit_tiny_cpu",
)
