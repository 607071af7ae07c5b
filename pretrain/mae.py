"""Masked Autoencoder (He et al., 2021) on the shared ViT.

The encoder is the shared VisionTransformer itself (this class extends it), so its state-dict keys
are exactly the official ones; the decoder adds `mask_token`, `decoder_embed`, `decoder_pos_embed`,
`decoder_blocks.N.*`, `decoder_norm` and `decoder_pred`, also as in the official code.
"""
from __future__ import annotations

from collections.abc import Iterable
from typing import Any, cast

import torch
import torch.nn as nn
import torch.nn.functional as F

from backbones.pos_embed import resample_pos_embed, sincos_2d
from backbones.vit import VIT_SIZES, Block, VisionTransformer, _init_linear_and_norm

from .masking import sample_noise

TARGETS = ("pixel", "norm_pixel", "pca", "dvae_token")


class MaskedAutoencoder(VisionTransformer):
    """target: "pixel", "norm_pixel" (per-patch normalised pixels, the official norm_pix_loss) or
    "pca" (the top pca_dim PCA coefficients of each patch, Table 1d; fit with fit_pca first) or
    "dvae_token" (the token id of each patch under a frozen dVAE `tokenizer`, predicted with
    cross-entropy: Table 1d / Table 7; see pretrain.tokenizer).
    loss_on: "masked" (the paper) or "all" patches. mask_sampling: "random", "block" or "grid".
    encoder_mask_token: the Table 1c/Table 2 baseline whose encoder sees every patch, with the
    masked ones replaced by a learned token; the decoder then gets the full sequence.
    """

    # set in __init__ only for their targets: buffers for "pca", the frozen tokenizer for "dvae_token"
    pca_mean: torch.Tensor
    pca_components: torch.Tensor
    tokenizer: nn.Module

    def __init__(self, img_size: int = 224, patch_size: int = 16, in_chans: int = 3, embed_dim: int = 1024, depth: int = 24,
                 num_heads: int = 16, decoder_embed_dim: int = 512, decoder_depth: int = 8, decoder_num_heads: int = 16,
                 mlp_ratio: float = 4.0, norm_eps: float = 1e-6, target: str = "pixel", norm_pix_loss: bool = False,
                 pca_dim: int = 96, loss_on: str = "masked", mask_sampling: str = "random", encoder_mask_token: bool = False,
                 tokenizer: nn.Module | None = None, drop_path_rate: float = 0.0, grad_checkpointing: bool = False) -> None:
        if norm_pix_loss:  # the official argument name
            target = "norm_pixel"
        if target not in TARGETS:
            raise ValueError(f"target must be one of {TARGETS}, got {target!r}")
        if (target == "dvae_token") != (tokenizer is not None):
            raise ValueError("target='dvae_token' needs a tokenizer (pretrain.tokenizer.load_tokenizer), and only it takes one")
        if loss_on not in ("masked", "all"):
            raise ValueError(f"loss_on must be 'masked' or 'all', got {loss_on!r}")
        super().__init__(img_size, patch_size, in_chans, embed_dim, depth, num_heads, mlp_ratio,
                         norm_eps=norm_eps, drop_path_rate=drop_path_rate, grad_checkpointing=grad_checkpointing)
        self.target, self.loss_on, self.mask_sampling = target, loss_on, mask_sampling
        patch_dim = patch_size**2 * in_chans

        if encoder_mask_token:
            self.encoder_mask_token = nn.Parameter(torch.zeros(1, 1, embed_dim))
        else:
            self.mask_token = nn.Parameter(torch.zeros(1, 1, decoder_embed_dim))
        self.decoder_embed = nn.Linear(embed_dim, decoder_embed_dim)
        self.decoder_pos_embed = nn.Parameter(sincos_2d(decoder_embed_dim, self.grid_size, 1), requires_grad=False)
        self.decoder_blocks = nn.ModuleList([
            Block(decoder_embed_dim, decoder_num_heads, mlp_ratio, qkv_bias=True, norm_eps=norm_eps)
            for _ in range(decoder_depth)
        ])
        self.decoder_norm = nn.LayerNorm(decoder_embed_dim, eps=norm_eps)
        vocab_size = cast(int, tokenizer.vocab_size) if tokenizer else 0  # an int attribute, not a submodule
        out_dim = {"pca": pca_dim, "dvae_token": vocab_size}.get(target, patch_dim)
        self.decoder_pred = nn.Linear(decoder_embed_dim, out_dim)
        if target == "pca":
            self.register_buffer("pca_mean", torch.zeros(patch_dim))
            self.register_buffer("pca_components", torch.zeros(pca_dim, patch_dim))
        if tokenizer is not None:
            self.tokenizer = tokenizer  # frozen; its weights travel in the checkpoint for exact resume
        for token in ("mask_token", "encoder_mask_token"):
            if hasattr(self, token):
                nn.init.normal_(getattr(self, token), std=0.02)
        for module in (self.decoder_embed, self.decoder_blocks, self.decoder_norm, self.decoder_pred):
            module.apply(_init_linear_and_norm)

    # -- patches ----------------------------------------------------------------------------
    def patchify(self, imgs: torch.Tensor) -> torch.Tensor:
        """(N, C, H, W) -> (N, h*w, p*p*C), the official order (pixels within a patch, then channel)."""
        p, c = self.patch_size, self.in_chans
        h, w = imgs.shape[2] // p, imgs.shape[3] // p
        x = imgs.reshape(imgs.shape[0], c, h, p, w, p)
        return torch.einsum("nchpwq->nhwpqc", x).reshape(imgs.shape[0], h * w, p * p * c)

    def unpatchify(self, x: torch.Tensor, grid: tuple[int, int] | None = None) -> torch.Tensor:
        p, c = self.patch_size, self.in_chans
        h, w = grid or self.grid_size
        x = torch.einsum("nhwpqc->nchpwq", x.reshape(x.shape[0], h, w, p, p, c))
        return x.reshape(x.shape[0], c, h * p, w * p)

    def targets(self, imgs: torch.Tensor) -> torch.Tensor:
        """What the decoder predicts, per patch: (N, L, patch_dim), (N, L, pca_dim) or token ids (N, L)."""
        if self.target == "dvae_token":
            return self.tokenizer(imgs, (imgs.shape[2] // self.patch_size, imgs.shape[3] // self.patch_size))
        target = self.patchify(imgs)
        if self.target == "norm_pixel":
            mean, var = target.mean(dim=-1, keepdim=True), target.var(dim=-1, keepdim=True)
            target = (target - mean) / (var + 1.0e-6) ** 0.5
        elif self.target == "pca":
            if not self.pca_components.any():
                raise RuntimeError("target='pca' needs a fitted basis: call pretrain.fit_pca(model, images) first")
            target = (target - self.pca_mean) @ self.pca_components.t()
        return target

    # -- the method ----------------------------------------------------------------------------
    def sample_noise(self, batch: int, grid: tuple[int, int], mask_ratio: float,
                     device: torch.device | str) -> torch.Tensor:
        return sample_noise(self.mask_sampling, grid, mask_ratio, batch).to(device)

    def forward_encoder(self, imgs: torch.Tensor, mask_ratio: float, noise: torch.Tensor | None = None
                        ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, tuple[int, int]]:
        """Returns encoded tokens (cls first), mask (N, L; 1 = masked), ids_restore, grid."""
        x, grid = self.patch_embed(imgs)
        N, L, D = x.shape
        if noise is None:
            noise = self.sample_noise(N, grid, mask_ratio, imgs.device)
        len_keep = int(L * (1 - mask_ratio))
        ids_shuffle = torch.argsort(noise, dim=1)
        ids_restore = torch.argsort(ids_shuffle, dim=1)
        mask = torch.ones(N, L, device=x.device)
        mask[:, :len_keep] = 0
        mask = torch.gather(mask, 1, ids_restore)

        pos = self.pos_embed_for(grid)[:, 1:]
        if hasattr(self, "encoder_mask_token"):  # every patch goes through the encoder
            x = torch.where(mask.bool()[..., None], self.encoder_mask_token.to(x.dtype), x) + pos
        else:  # only the visible ones do
            x = torch.gather(x + pos, 1, ids_shuffle[:, :len_keep, None].expand(-1, -1, D))
        x = self.prepend_cls_token(x)
        x, _ = self.run_blocks(x)
        return self.norm(x), mask, ids_restore, grid

    def forward_decoder(self, x: torch.Tensor, ids_restore: torch.Tensor, grid: tuple[int, int]) -> torch.Tensor:
        x = self.decoder_embed(x)
        if hasattr(self, "mask_token"):  # append mask tokens and unshuffle to the original order
            N, L = ids_restore.shape
            tokens = torch.cat([x[:, 1:], self.mask_token.to(x.dtype).expand(N, L + 1 - x.shape[1], -1)], dim=1)
            tokens = torch.gather(tokens, 1, ids_restore[..., None].expand(-1, -1, x.shape[2]))
            x = torch.cat([x[:, :1], tokens], dim=1)
        x = x + resample_pos_embed(self.decoder_pos_embed, grid, 1, old_grid=self.grid_size)
        for blk in self.decoder_blocks:
            x = blk(x)
        return self.decoder_pred(self.decoder_norm(x))[:, 1:]

    def forward_loss(self, imgs: torch.Tensor, pred: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        if self.target == "dvae_token":
            loss = F.cross_entropy(pred.float().transpose(1, 2), self.targets(imgs), reduction="none")
        else:
            loss = ((pred.float() - self.targets(imgs).float()) ** 2).mean(dim=-1)
        if self.loss_on == "masked":
            return (loss * mask).sum() / mask.sum()
        return loss.mean()

    # the official MAE's forward: a mask ratio in, (loss, pred, mask) out, unlike the encoder's features
    def forward(self, imgs: torch.Tensor, mask_ratio: float = 0.75,  # type: ignore[override]
                noise: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """-> (loss, pred (N, L, patch_dim or target dim), mask (N, L) with 1 = masked)."""
        latent, mask, ids_restore, grid = self.forward_encoder(imgs, mask_ratio, noise)
        pred = self.forward_decoder(latent, ids_restore, grid)
        return self.forward_loss(imgs, pred, mask), pred, mask


@torch.no_grad()
def fit_pca(model: MaskedAutoencoder, images: Iterable[torch.Tensor]) -> float:
    """Fits the PCA target basis on an iterable of image batches (N, C, H, W); returns the
    fraction of patch variance the kept components explain."""
    patches = torch.cat([model.patchify(batch.float()).flatten(0, 1) for batch in images])
    k = model.pca_components.shape[0]
    if patches.shape[0] < k:
        raise ValueError(f"fit_pca got {patches.shape[0]} patches, fewer than pca_dim={k}")
    mean = patches.mean(0)
    _, s, v = torch.linalg.svd(patches - mean, full_matrices=False)
    model.pca_mean.copy_(mean)
    model.pca_components.copy_(v[:k])
    return float((s[:k] ** 2).sum() / (s**2).sum())


MAE_MODELS = {
    "mae_vit_tiny_patch16": "vit_tiny",
    "mae_vit_small_patch16": "vit_small",
    "mae_vit_base_patch16": "vit_base",
    "mae_vit_large_patch16": "vit_large",
    "mae_vit_huge_patch14": "vit_huge",
}


def build_mae(name: str, **overrides: Any) -> MaskedAutoencoder:
    """build_mae("mae_vit_base_patch16", norm_pix_loss=True, ...) with the official sizes
    (decoder 512-d, 8 blocks, 16 heads by default); any argument of MaskedAutoencoder overrides."""
    if name not in MAE_MODELS:
        raise ValueError(f"unknown MAE model {name!r}; choose from {sorted(MAE_MODELS)}")
    dim, depth, heads, patch = VIT_SIZES[MAE_MODELS[name]]
    kwargs: dict[str, Any] = dict(patch_size=patch, embed_dim=dim, depth=depth, num_heads=heads)
    kwargs.update(overrides)
    return MaskedAutoencoder(**kwargs)
