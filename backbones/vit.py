"""The Vision Transformer shared by pre-training, classification, detection and segmentation.

State-dict names follow the official MAE / timm ViT (`patch_embed.proj`, `cls_token`, `pos_embed`,
`blocks.N.{norm1,attn.qkv,attn.proj,norm2,mlp.fc1,mlp.fc2}`, `norm`), so official checkpoints load
as they are. The transfer options (windowed attention, relative positions) are off by default and
start at zero, so a pre-trained encoder computes the same function when they are turned on.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F
from timm.layers import DropPath, Mlp
from torch.utils.checkpoint import checkpoint

from .pos_embed import resample_pos_embed, sincos_2d

# name -> (embed_dim, depth, num_heads, default patch size)
VIT_SIZES = {
    "vit_tiny": (192, 12, 3, 16),
    "vit_small": (384, 12, 6, 16),
    "vit_base": (768, 12, 12, 16),
    "vit_large": (1024, 24, 16, 16),
    "vit_huge": (1280, 32, 16, 14),
}


def _pair(x):
    return (x, x) if isinstance(x, int) else tuple(x)


class PatchEmbed(nn.Module):
    def __init__(self, patch_size: int = 16, in_chans: int = 3, embed_dim: int = 768) -> None:
        super().__init__()
        self.patch_size = patch_size
        self.proj = nn.Conv2d(in_chans, embed_dim, kernel_size=patch_size, stride=patch_size)

    def forward(self, imgs: torch.Tensor) -> tuple[torch.Tensor, tuple[int, int]]:
        """(B, C, H, W) -> tokens (B, h*w, D) in row-major order, and the grid (h, w)."""
        H, W = imgs.shape[-2:]
        if H % self.patch_size or W % self.patch_size:
            raise ValueError(f"image size {H}x{W} is not divisible by the patch size {self.patch_size}")
        x = self.proj(imgs)
        return x.flatten(2).transpose(1, 2), (x.shape[2], x.shape[3])


def _relative_coords(q_size, k_size, table):
    """Look up a (2*max-1, C) table of decomposed relative positions, resampled when sizes differ."""
    num = 2 * max(q_size, k_size) - 1
    if table.shape[0] != num:
        table = F.interpolate(table.t()[None], size=num, mode="linear").squeeze(0).t()
    q = torch.arange(q_size, device=table.device)[:, None] * max(k_size / q_size, 1.0)
    k = torch.arange(k_size, device=table.device)[None, :] * max(q_size / k_size, 1.0)
    return table[(q - k + (k_size - 1) * max(q_size / k_size, 1.0)).long()]


def _relative_position_index(rows, cols):
    """(1 + rows*cols)^2 indices into a BEiT bias table: (2 rows - 1)(2 cols - 1) offsets between
    patches, then cls-to-patch, patch-to-cls and cls-to-cls."""
    num_relative = (2 * rows - 1) * (2 * cols - 1)
    coords = torch.stack(torch.meshgrid(torch.arange(rows), torch.arange(cols), indexing="ij")).flatten(1)
    rel = coords[:, :, None] - coords[:, None, :]
    index = torch.zeros(rows * cols + 1, rows * cols + 1, dtype=torch.long)
    index[1:, 1:] = (rel[0] + rows - 1) * (2 * cols - 1) + rel[1] + cols - 1
    index[0, :], index[:, 0], index[0, 0] = num_relative, num_relative + 1, num_relative + 2
    return index


def _resample_bias_table(table, old_grid, new_grid):
    """Bicubic resampling of the offset part of a BEiT bias table; the 3 cls entries are kept."""
    (r, c), (nr, nc) = old_grid, new_grid
    offsets = table[:-3].t().reshape(1, -1, 2 * r - 1, 2 * c - 1)
    offsets = F.interpolate(offsets, size=(2 * nr - 1, 2 * nc - 1), mode="bicubic", align_corners=False)
    return torch.cat([offsets.reshape(table.shape[1], -1).t(), table[-3:]])


class Attention(nn.Module):
    """Multi-head self-attention through F.scaled_dot_product_attention.

    rel_pos: None; "bias" (BEiT relative position bias, one table per block, cls token included);
    or "decomposed" (ViTDet/MViTv2 decomposed relative positions, spatial tokens only).
    rel_pos_grid is the (rows, cols) grid the tables are sized for (a window for windowed blocks).
    """

    relative_position_index: torch.Tensor  # a buffer, with rel_pos="bias"

    def __init__(self, dim: int, num_heads: int = 8, qkv_bias: bool = True, rel_pos: str | None = None,
                 rel_pos_grid: tuple[int, int] | None = None) -> None:
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"embed dim {dim} is not divisible by num_heads {num_heads}")
        self.num_heads = num_heads
        self.qkv = nn.Linear(dim, dim * 3, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)
        self.rel_pos = rel_pos
        if rel_pos is None:
            return
        rows, cols = _pair(rel_pos_grid)
        if rel_pos == "decomposed":
            self.rel_pos_h = nn.Parameter(torch.zeros(2 * rows - 1, dim // num_heads))
            self.rel_pos_w = nn.Parameter(torch.zeros(2 * cols - 1, dim // num_heads))
        elif rel_pos == "bias":
            self.relative_position_bias_table = nn.Parameter(torch.zeros((2 * rows - 1) * (2 * cols - 1) + 3, num_heads))
            self.register_buffer("relative_position_index", _relative_position_index(rows, cols), persistent=False)
            self.rel_pos_grid = (rows, cols)
        else:
            raise ValueError(f"rel_pos must be None, 'bias' or 'decomposed', got {rel_pos!r}")

    def _bias(self, q, grid, num_prefix_tokens):
        if self.rel_pos == "bias":
            table, index = self.relative_position_bias_table, self.relative_position_index
            if tuple(grid) != self.rel_pos_grid:  # another input size: resample the table of offsets
                table, index = _resample_bias_table(table, self.rel_pos_grid, grid), _relative_position_index(*grid)
            index = index[1 - num_prefix_tokens:, 1 - num_prefix_tokens:].to(table.device)
            return table[index].permute(2, 0, 1).unsqueeze(0)
        if num_prefix_tokens:
            raise ValueError("decomposed relative positions work on spatial tokens only (no cls token)")
        rows, cols = grid
        B, heads, _, head_dim = q.shape
        r_q = q.reshape(B, heads, rows, cols, head_dim)
        rel_h = torch.einsum("bnhwc,hkc->bnhwk", r_q, _relative_coords(rows, rows, self.rel_pos_h).to(q.dtype))
        rel_w = torch.einsum("bnhwc,wkc->bnhwk", r_q, _relative_coords(cols, cols, self.rel_pos_w).to(q.dtype))
        bias = rel_h[..., :, None] + rel_w[..., None, :]
        return bias.reshape(B, heads, rows * cols, rows * cols)

    def forward(self, x: torch.Tensor, grid: tuple[int, int] | None = None, num_prefix_tokens: int = 0) -> torch.Tensor:
        B, N, C = x.shape
        q, k, v = self.qkv(x).reshape(B, N, 3, self.num_heads, C // self.num_heads).permute(2, 0, 3, 1, 4).unbind(0)
        bias = None if self.rel_pos is None else self._bias(q, grid, num_prefix_tokens)
        return self.proj(_sdpa(q, k, v, bias).transpose(1, 2).reshape(B, N, C))


def _sdpa(q, k, v, bias):
    if q.device.type == "cpu" and q.dtype == torch.bfloat16:
        # torch's CPU attention kernels are slower in bf16 than in fp32 (fwd+bwd, measured in
        # docs/benchmarks.md), and fp32 is the more accurate: attend in fp32, return bf16.
        with torch.autocast("cpu", enabled=False):
            bias = None if bias is None else bias.float()
            return F.scaled_dot_product_attention(q.float(), k.float(), v.float(), attn_mask=bias).to(q.dtype)
    return F.scaled_dot_product_attention(q, k, v, attn_mask=None if bias is None else bias.to(q.dtype))


class Block(nn.Module):
    """Pre-norm transformer block; window_size > 0 makes attention local to non-overlapping windows."""

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float = 4.0, qkv_bias: bool = True, drop_path: float = 0.0,
                 norm_eps: float = 1e-6, window_size: int = 0, rel_pos: str | None = None,
                 rel_pos_grid: tuple[int, int] | None = None) -> None:
        super().__init__()
        self.window_size = window_size
        self.norm1 = nn.LayerNorm(dim, eps=norm_eps)
        self.attn = Attention(dim, num_heads, qkv_bias, rel_pos, (window_size, window_size) if window_size else rel_pos_grid)
        self.drop_path = DropPath(drop_path) if drop_path > 0 else nn.Identity()
        self.norm2 = nn.LayerNorm(dim, eps=norm_eps)
        self.mlp = Mlp(dim, int(dim * mlp_ratio), act_layer=nn.GELU)

    def forward(self, x: torch.Tensor, grid: tuple[int, int] | None = None, num_prefix_tokens: int = 0) -> torch.Tensor:
        if self.window_size:
            attn = self._windowed_attention(self.norm1(x), grid, num_prefix_tokens)
        else:
            attn = self.attn(self.norm1(x), grid, num_prefix_tokens)
        x = x + self.drop_path(attn)
        return x + self.drop_path(self.mlp(self.norm2(x)))

    def _windowed_attention(self, x, grid, num_prefix_tokens):
        if num_prefix_tokens:
            raise ValueError("windowed attention works on spatial tokens only: call the ViT with cls_token=False")
        B, _, C = x.shape
        (rows, cols), ws = grid, self.window_size
        x = F.pad(x.reshape(B, rows, cols, C), (0, 0, 0, -cols % ws, 0, -rows % ws))
        pr, pc = x.shape[1] // ws, x.shape[2] // ws
        windows = x.reshape(B, pr, ws, pc, ws, C).permute(0, 1, 3, 2, 4, 5).reshape(B * pr * pc, ws * ws, C)
        windows = self.attn(windows, (ws, ws))
        x = windows.reshape(B, pr, pc, ws, ws, C).permute(0, 1, 3, 2, 4, 5).reshape(B, pr * ws, pc * ws, C)
        return x[:, :rows, :cols].reshape(B, rows * cols, C)


class VisionTransformer(nn.Module):
    """ViT encoder without a classification head (heads belong to the tasks).

    learnable_pos_embed: False keeps the fixed sin-cos embedding (pre-training); fine-tuning recipes
    train it. pos_embed_size: the image size the position table is built for (default img_size); a
    table for another grid is interpolated to the input's grid in every forward (ViTDet keeps the
    224 px pre-training table so). window_size/global_block_indexes: ViTDet-style windowed attention
    in every block except the listed ones. rel_pos: None, "bias" or "decomposed" (see Attention),
    zero-initialised; their tables are sized for the img_size grid.
    """

    def __init__(self, img_size: int | Sequence[int] = 224, patch_size: int = 16, in_chans: int = 3, embed_dim: int = 768,
                 depth: int = 12, num_heads: int = 12, mlp_ratio: float = 4.0, qkv_bias: bool = True, norm_eps: float = 1e-6,
                 drop_path_rate: float = 0.0, learnable_pos_embed: bool = False, window_size: int = 0,
                 global_block_indexes: Sequence[int] = (), rel_pos: str | None = None, grad_checkpointing: bool = False,
                 pos_embed_size: int | Sequence[int] | None = None) -> None:
        super().__init__()
        self.embed_dim, self.depth, self.num_heads = embed_dim, depth, num_heads
        self.patch_size, self.in_chans = patch_size, in_chans
        if any(size % patch_size or size < patch_size for size in _pair(img_size)):
            raise ValueError(f"input size {img_size} is not a multiple of the patch size {patch_size}: set the input "
                             f"size (input_size, img_size) to a multiple of {patch_size}")
        self.grid_size = tuple(s // patch_size for s in _pair(img_size))
        self.pos_embed_grid = tuple(s // patch_size for s in _pair(pos_embed_size or img_size))
        self.num_prefix_tokens = 1
        self.grad_checkpointing = grad_checkpointing
        self.patch_embed = PatchEmbed(patch_size, in_chans, embed_dim)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, embed_dim))
        self.pos_embed = nn.Parameter(sincos_2d(embed_dim, self.pos_embed_grid, 1), requires_grad=learnable_pos_embed)
        drop_path = [drop_path_rate * i / max(depth - 1, 1) for i in range(depth)]  # linear in depth
        self.blocks = nn.ModuleList([
            Block(embed_dim, num_heads, mlp_ratio, qkv_bias, drop_path[i], norm_eps,
                  window_size=0 if i in global_block_indexes else window_size,
                  rel_pos=rel_pos, rel_pos_grid=self.grid_size)
            for i in range(depth)
        ])
        self.norm = nn.LayerNorm(embed_dim, eps=norm_eps)
        self.init_weights()

    def init_weights(self) -> None:
        """The official MAE initialisation; relative-position tables stay zero."""
        w = self.patch_embed.proj.weight.data
        nn.init.xavier_uniform_(w.view(w.shape[0], -1))
        nn.init.normal_(self.cls_token, std=0.02)
        self.apply(_init_linear_and_norm)

    def pos_embed_for(self, grid: tuple[int, int]) -> torch.Tensor:
        """The position embedding (cls position first) for a patch grid, resampled if it differs."""
        return resample_pos_embed(self.pos_embed, grid, self.num_prefix_tokens, old_grid=self.pos_embed_grid)

    def embed(self, imgs: torch.Tensor) -> tuple[torch.Tensor, tuple[int, int]]:
        """Patch tokens plus their position embeddings (no cls token), and the grid."""
        x, grid = self.patch_embed(imgs)
        return x + self.pos_embed_for(grid)[:, self.num_prefix_tokens:], grid

    def prepend_cls_token(self, x: torch.Tensor) -> torch.Tensor:
        cls = (self.cls_token + self.pos_embed[:, :1]).expand(x.shape[0], -1, -1)
        return torch.cat([cls, x], dim=1)

    def run_blocks(self, x: torch.Tensor, grid: tuple[int, int] | None = None, num_prefix_tokens: int = 1,
                   out_indices: Sequence[int] = ()) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Runs every block; returns the last output and the outputs of the blocks in out_indices."""
        outs = []
        for i, blk in enumerate(self.blocks):
            if self.grad_checkpointing and self.training and torch.is_grad_enabled():
                x = checkpoint(blk, x, grid, num_prefix_tokens, use_reentrant=False)
            else:
                x = blk(x, grid, num_prefix_tokens)
            if i in out_indices:
                outs.append(x)
        return x, outs

    def forward_features(self, imgs: torch.Tensor, out_indices: Sequence[int] = (),
                         cls_token: bool = True) -> tuple[torch.Tensor, list[torch.Tensor], tuple[int, int]]:
        """Encodes whole images. Returns (normed tokens, [block outputs of out_indices], grid).

        Block outputs are taken before the final norm; with cls_token=False (dense tasks with
        windowed attention) the sequence holds the spatial tokens only.
        """
        x, outs, grid = self.forward_tokens(imgs, out_indices, cls_token)
        return self.norm(x), outs, grid

    def forward_tokens(self, imgs: torch.Tensor, out_indices: Sequence[int] = (),
                       cls_token: bool = True) -> tuple[torch.Tensor, list[torch.Tensor], tuple[int, int]]:
        """(the last block's tokens, [block outputs of out_indices], grid), no final norm."""
        x, grid = self.embed(imgs)
        if cls_token:
            x = self.prepend_cls_token(x)
        x, outs = self.run_blocks(x, grid, int(cls_token), out_indices)
        return x, outs, grid

    def forward_dense(self, imgs: torch.Tensor, out_indices: Sequence[int],
                      cls_token: bool = True) -> list[torch.Tensor]:
        """The outputs of the blocks in out_indices as (N, C, H/p, W/p) feature maps, for dense tasks
        (before the final norm, prefix tokens dropped). cls_token=False runs the blocks on the spatial
        tokens only (a backbone without a cls token, e.g. ViTDet's)."""
        _, outs, grid = self.forward_tokens(imgs, out_indices, cls_token)
        skip = int(cls_token)
        return [o[:, skip:].transpose(1, 2).reshape(o.shape[0], -1, *grid).contiguous() for o in outs]

    def forward(self, imgs: torch.Tensor) -> torch.Tensor:
        return self.forward_features(imgs)[0]


def _init_linear_and_norm(m):
    if isinstance(m, nn.Linear):
        nn.init.xavier_uniform_(m.weight)
        if m.bias is not None:
            nn.init.zeros_(m.bias)
    elif isinstance(m, nn.LayerNorm):
        nn.init.ones_(m.weight)
        nn.init.zeros_(m.bias)


def vit_arguments(name: str) -> dict:
    """"vit_base_patch16" -> the VisionTransformer arguments of that size (VIT_SIZES) and patch size."""
    size, _, patch = name.rpartition("_patch")
    if size not in VIT_SIZES or not patch.isdigit():
        raise ValueError(f"unknown ViT {name!r}: expected vit_{{tiny,small,base,large,huge}}_patchN")
    dim, depth, heads, _ = VIT_SIZES[size]
    return dict(patch_size=int(patch), embed_dim=dim, depth=depth, num_heads=heads)


def build_vit(name: str, **overrides: Any) -> VisionTransformer:
    """build_vit("vit_base_patch16", img_size=224, ...): a size from VIT_SIZES, any patch size."""
    return VisionTransformer(**{**vit_arguments(name), **overrides})
