"""The shared ViT as a Detectron2 backbone, with the two ways to a multi-scale pyramid:

- "groups" (the paper's A.3 design, after Li et al. 2021, Table 4's default): the blocks form 4
  equal groups with windowed attention inside and a global last block; each group's output is
  resampled to strides 4, 8, 16, 32 by the shared backbones.pyramid module and fed to a standard FPN.
- "simple" (ViTDet): Detectron2's own SimpleFeaturePyramid on the last block's map.
"""
from typing import Any

import torch
from detectron2.config import CfgNode
from detectron2.modeling import BACKBONE_REGISTRY, Backbone, ShapeSpec, SimpleFeaturePyramid
from detectron2.modeling.backbone.fpn import FPN, LastLevelMaxPool

from backbones import CLASSIFIER_KEYS, MAE_DECODER_KEYS, LoadReport, load_checkpoint
from backbones.pyramid import MultiScaleResample
from backbones.vit import VisionTransformer

STAGES = ("stage2", "stage3", "stage4", "stage5")


def pyramid_scales(patch_size: int) -> tuple[float, ...]:
    """Scale factors from a ViT's stride (its patch size) to strides 4, 8, 16, 32."""
    scales = tuple(patch_size / stride for stride in (4, 8, 16, 32))
    if patch_size not in (8, 16):
        raise ValueError(f"patch size {patch_size} gives no power-of-two pyramid (strides 4-32) for Detectron2's "
                         f"heads; use 16 (or 8)")
    return scales


class ViTBackbone(Backbone):
    """Stride-16 maps of the ViT without its cls token. multi_scale=True returns the outputs of the
    last block of each of 4 equal groups resampled to strides 4-32 (`stage2`..`stage5`);
    multi_scale=False returns the last block's map (`last_feat`).

    Position embeddings as in ViTDet (Detectron2's ViT): a learnable table for the pre-training
    grid (pretrain_img_size / patch_size, 14x14 at 224 px) interpolated to the input's grid in every
    forward; pretrain_img_size=img_size instead resamples the table once, at load."""

    def __init__(self, img_size: int = 1024, patch_size: int = 16, embed_dim: int = 768, depth: int = 12,
                 num_heads: int = 12, drop_path_rate: float = 0.1, window_size: int = 14, use_rel_pos: bool = True,
                 multi_scale: bool = True, pyramid_norm: str = "ln", init_checkpoint: str | None = None,
                 grad_checkpointing: bool = False, pretrain_img_size: int = 224) -> None:
        super().__init__()
        if depth % 4:
            raise ValueError(f"depth {depth} does not split into 4 equal groups")
        scales = pyramid_scales(patch_size)  # before the ViT: a patch size without a pyramid is the problem to name
        self.group_ends = tuple(depth // 4 * (i + 1) - 1 for i in range(4))
        self.vit = VisionTransformer(img_size, patch_size, 3, embed_dim, depth, num_heads, drop_path_rate=drop_path_rate,
                                     learnable_pos_embed=True, window_size=window_size,
                                     global_block_indexes=self.group_ends,
                                     rel_pos="decomposed" if use_rel_pos else None, grad_checkpointing=grad_checkpointing,
                                     pos_embed_size=pretrain_img_size)
        del self.vit.norm, self.vit.cls_token  # dense features use the patch tokens only
        self.multi_scale = multi_scale
        if multi_scale:  # resample the stride-`patch_size` maps to strides 4, 8, 16, 32
            self.resample = MultiScaleResample(embed_dim, scales, pyramid_norm)
            self._out_features = list(STAGES)
            self._out_feature_strides = dict(zip(STAGES, (4, 8, 16, 32)))
        else:
            self._out_features = ["last_feat"]
            self._out_feature_strides = {"last_feat": patch_size}
        self._out_feature_channels = {name: embed_dim for name in self._out_features}
        self.init_checkpoint = init_checkpoint
        # what the load used, dropped and resampled: det/train.py logs it
        self.init_report = self.load_pretrained(init_checkpoint) if init_checkpoint else None

    def load_pretrained(self, path: str) -> LoadReport:
        """Every encoder key is used (a position table for another grid is resampled to the
        pretrain_img_size grid); the decoder, cls token, final norm and heads are declared drops;
        relative positions start at 0."""
        return load_checkpoint(self.vit, path, drop=MAE_DECODER_KEYS + CLASSIFIER_KEYS + ("cls_token", "norm.*"),
                               allow_missing=("blocks.*.attn.rel_pos_h", "blocks.*.attn.rel_pos_w"))

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        maps = self.vit.forward_dense(x, self.group_ends if self.multi_scale else (self.vit.depth - 1,), cls_token=False)
        if self.multi_scale:
            return dict(zip(STAGES, self.resample(maps)))
        return {"last_feat": maps[-1]}

    def output_shape(self) -> dict[str, ShapeSpec]:
        return {name: ShapeSpec(channels=self._out_feature_channels[name], stride=self._out_feature_strides[name])
                for name in self._out_features}


def vit_fpn(vit: ViTBackbone, out_channels: int = 256, square_pad: int = 1024) -> FPN:
    """The paper's adapter: grouped ViT outputs, resampled, into a standard FPN (p2-p6)."""
    return FPN(bottom_up=vit, in_features=list(STAGES), out_channels=out_channels, norm="LN",
               top_block=LastLevelMaxPool(), square_pad=square_pad)


def vit_simple_pyramid(vit: ViTBackbone, out_channels: int = 256, square_pad: int = 1024) -> SimpleFeaturePyramid:
    """ViTDet's adapter: Detectron2's SimpleFeaturePyramid on the last map (p2-p6)."""
    return SimpleFeaturePyramid(net=vit, in_feature="last_feat", out_channels=out_channels,
                                scale_factors=pyramid_scales(vit.vit.patch_size), top_block=LastLevelMaxPool(),
                                norm="LN", square_pad=square_pad)


@BACKBONE_REGISTRY.register()
def build_mae_vit_backbone(cfg: CfgNode, input_shape: ShapeSpec) -> Backbone:
    """For yacs configs: MODEL.BACKBONE.NAME = "build_mae_vit_backbone" and a MODEL.MAE_VIT node
    (keys of ViTBackbone in upper case, plus ADAPTER: "groups" or "simple")."""
    node = cfg.MODEL.MAE_VIT
    kwargs: dict[str, Any] = {k.lower(): v for k, v in node.items() if k != "ADAPTER"}
    adapter = node.get("ADAPTER", "groups")
    vit = ViTBackbone(multi_scale=adapter == "groups", **kwargs)
    build = vit_fpn if adapter == "groups" else vit_simple_pyramid
    return build(vit, cfg.MODEL.FPN.OUT_CHANNELS, kwargs.get("img_size", 1024))
