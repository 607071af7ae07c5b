import os
import sys

import pytest
import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


def tiny_mae_kwargs(**overrides):
    """A MAE small enough for CPU tests: 32 px images, 8 px patches (a 4x4 grid)."""
    kwargs = dict(img_size=32, patch_size=8, embed_dim=64, depth=2, num_heads=4,
                  decoder_embed_dim=32, decoder_depth=2, decoder_num_heads=4)
    kwargs.update(overrides)
    return kwargs


# The encoder every transfer test uses: ViT-Tiny width, 4 blocks, 8 px patches.
TINY_ENCODER = dict(patch_size=8, depth=4)


@pytest.fixture(scope="session")
def tiny_mae_checkpoint(tmp_path_factory):
    """A tiny MAE pre-trained for 20 epochs on 512 generated 64 px scenes (about 30 s here)."""
    from pretrain.config import PretrainConfig
    from pretrain.engine import Trainer
    from tools.make_toy_data import write_image_folder

    out = tmp_path_factory.mktemp("tiny_mae")
    write_image_folder(str(out / "images"), num_images=512, size=64, seed=5)
    cfg = PretrainConfig(model="mae_vit_tiny_patch16", data=str(out / "images"), output_dir=str(out / "run"),
                         model_overrides=dict(**TINY_ENCODER, decoder_embed_dim=64, decoder_depth=1, decoder_num_heads=4),
                         input_size=64, epochs=20, warmup_epochs=2, batch_size=32, blr=1.5e-3, num_workers=0,
                         vis_every=0, save_every=100)
    Trainer(cfg).train()
    return str(out / "run" / "checkpoint-last.pth")
