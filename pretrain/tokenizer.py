"""Discrete-token targets (the "dVAE token" row of Table 7, as in BEiT): a frozen dVAE encoder maps
each image patch to one of `vocab_size` token ids, which the MAE decoder then predicts.

The encoder architecture is the DALL-E dVAE's (the `dall-e` package). Two sources of weights:
  - the released DALL-E encoder (encoder.pkl, vocabulary 8192), read from a local file;
  - a small dVAE trained by tools/train_dvae.py on the pre-training images (DiscreteVAE below).
Both read with weights_only=True: encoder.pkl pickles the whole module, so its classes are allowed
for that one load only (a scoped allow-list, nothing global).
"""
from __future__ import annotations

import collections
import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from common.checkpoint_files import CheckpointError, load_file
from common.images import IMAGENET_MEAN, IMAGENET_STD

DOWNSAMPLE = 8  # the DALL-E encoder halves the resolution three times
LOGIT_LAPLACE_EPS = 0.1  # DALL-E's pixel mapping into [eps, 1 - eps]


def _dall_e():
    try:
        from dall_e.decoder import Decoder
        from dall_e.encoder import Encoder, EncoderBlock
        from dall_e.utils import Conv2d
    except ImportError as e:
        raise ImportError("the dVAE-token target needs the `dall-e` package (pip install --no-deps dall-e==0.1 attrs; "
                          "scripts/setup.sh installs it)") from e
    return Encoder, EncoderBlock, Decoder, Conv2d


class DiscreteVAE(nn.Module):
    """DALL-E's encoder and decoder at a chosen width and vocabulary, trained with the Gumbel-softmax
    relaxation (tools/train_dvae.py). Only the encoder is used as a tokenizer."""

    def __init__(self, n_hid: int = 64, n_blk_per_group: int = 1, vocab_size: int = 512, n_init: int = 64) -> None:
        super().__init__()
        Encoder, _, Decoder, _ = _dall_e()
        self.arch = dict(n_hid=n_hid, n_blk_per_group=n_blk_per_group, vocab_size=vocab_size, n_init=n_init)
        # (dall_e's requires_grad=True breaks its own in-place init; nn.Parameter is trainable anyway)
        self.encoder = Encoder(n_hid=n_hid, n_blk_per_group=n_blk_per_group, vocab_size=vocab_size,
                               use_mixed_precision=False)
        self.decoder = Decoder(n_init=n_init, n_hid=n_hid, n_blk_per_group=n_blk_per_group, output_channels=3,
                               vocab_size=vocab_size, use_mixed_precision=False)
        self.requires_grad_(True)

    def tokens(self, pixels: torch.Tensor) -> torch.Tensor:
        """pixels in [0, 1] -> token ids (N, H/8, W/8)."""
        return self.encoder(map_pixels(pixels)).argmax(1)

    def decode(self, one_hot: torch.Tensor) -> torch.Tensor:
        """(soft) one-hot codes (N, vocab, h, w) -> pixels in [0, 1]. The decoder's first 3 channels
        are the pixel means in DALL-E's mapped space."""
        return unmap_pixels(torch.sigmoid(self.decoder(one_hot)[:, :3]))

    def forward(self, pixels: torch.Tensor, tau: float, kl_weight: float
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """pixels in [0, 1] -> (loss, reconstruction MSE, reconstruction in [0, 1])."""
        logits = self.encoder(map_pixels(pixels))
        recon = self.decode(F.gumbel_softmax(logits, tau=tau, dim=1))
        mse = F.mse_loss(recon, pixels)
        # KL(q || uniform prior) per position, as in DALL-E's ELBO
        log_q = F.log_softmax(logits, dim=1)
        kl = (log_q.exp() * (log_q + math.log(logits.shape[1]))).sum(dim=1).mean()
        return mse + kl_weight * kl, mse, recon


def map_pixels(x: torch.Tensor) -> torch.Tensor:
    return (1 - 2 * LOGIT_LAPLACE_EPS) * x + LOGIT_LAPLACE_EPS


def unmap_pixels(x: torch.Tensor) -> torch.Tensor:
    return ((x - LOGIT_LAPLACE_EPS) / (1 - 2 * LOGIT_LAPLACE_EPS)).clamp(0, 1)


class Tokenizer(nn.Module):
    """A frozen DALL-E-architecture encoder: ImageNet-normalised images -> token ids, one per patch.

    The image is resized so the token grid equals the MAE's patch grid (BEiT feeds the tokenizer
    the same crop at half the resolution for the same reason: 224 px / 16 px patches -> 112 px / 8).
    """

    mean: torch.Tensor  # buffers (register_buffer below)
    std: torch.Tensor

    def __init__(self, encoder: nn.Module) -> None:
        super().__init__()
        # channels-last: the same convolutions about 1.5x faster on CPUs (oneDNN's preferred layout)
        self.encoder = encoder.eval().requires_grad_(False).to(memory_format=torch.channels_last)
        self.vocab_size = encoder.vocab_size
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    def train(self, mode: bool = True) -> Tokenizer:
        return super().train(False)  # always frozen, whatever the MAE around it does

    @torch.no_grad()
    def forward(self, imgs: torch.Tensor, grid: tuple[int, int]) -> torch.Tensor:
        pixels = (imgs.float() * self.std + self.mean).clamp(0, 1)
        size = (grid[0] * DOWNSAMPLE, grid[1] * DOWNSAMPLE)
        if pixels.shape[-2:] != size:
            pixels = F.interpolate(pixels, size=size, mode="bilinear", align_corners=False, antialias=True)
        # outside the training autocast (on GPUs DALL-E's layers still compute in fp16, as released)
        with torch.autocast(imgs.device.type, enabled=False):
            logits = self.encoder(map_pixels(pixels).contiguous(memory_format=torch.channels_last))
        return logits.argmax(dim=1).flatten(1)  # (N, h*w), row-major like the patches


def load_tokenizer(path: str) -> Tokenizer:
    """A Tokenizer from tools/train_dvae.py's checkpoint, a state dict of DALL-E's Encoder (its
    default sizes: 8192 tokens), or DALL-E's released encoder.pkl (a pickled Encoder)."""
    Encoder, EncoderBlock, _, Conv2d = _dall_e()
    allowed = [Encoder, EncoderBlock, Conv2d, nn.Sequential, nn.ReLU, nn.MaxPool2d, nn.Identity,
               collections.OrderedDict, torch.device]
    with torch.serialization.safe_globals(allowed):
        obj = load_file(path)
    if isinstance(obj, Encoder):
        return Tokenizer(obj.float())
    if isinstance(obj, dict) and "arch" in obj and "model" in obj:  # tools/train_dvae.py
        arch = dict(obj["arch"])
        arch.pop("n_init", None)
        state = {k[len("encoder."):]: v for k, v in obj["model"].items() if k.startswith("encoder.")}
    elif isinstance(obj, dict) and any(k.startswith("blocks.") for k in obj):
        arch, state = {}, obj
    else:
        raise CheckpointError(f"{path}: not a dVAE tokenizer (expected tools/train_dvae.py's checkpoint, "
                              "DALL-E's encoder.pkl or a state dict of dall_e.encoder.Encoder)")
    encoder = Encoder(**arch, use_mixed_precision=False)
    try:
        encoder.load_state_dict(state, strict=True)
    except RuntimeError as e:
        raise CheckpointError(f"{path}: the weights do not fit a DALL-E encoder with {arch or 'default sizes'}: {e}") from e
    return Tokenizer(encoder)
