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
