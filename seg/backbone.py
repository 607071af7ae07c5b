from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from mmengine.logging import print_log
from mmengine.model import BaseModule
from mmseg.registry import MODELS

from backbones import CLASSIFIER_KEYS, MAE_DECODER_KEYS, load_checkpoint
from backbones.vit import VisionTransformer
from common.errors import UserError


@MODELS.register_module()
class MAEViT(BaseModule):
    """Outputs of the blocks in out_indices as (N, C, H/16, W/16) maps (cls token dropped).

    Relative position bias (one zero-initialised table per block) is on, as in the paper's A.4;
    position embeddings are learnable and resampled from the checkpoint's grid. The encoder's
    final norm is not used by UperNet and is not built.
    """

    def __init__(self, img_size: int = 512, patch_size: int = 16, embed_dim: int = 768, depth: int = 12,
                 num_heads: int = 12, mlp_ratio: float = 4.0, drop_path_rate: float = 0.1,
                 out_indices: Sequence[int] = (3, 5, 7, 11), rel_pos: str | None = "bias", grad_checkpointing: bool = False,
                 init_checkpoint: str | None = None, init_cfg: dict[str, Any] | list[dict[str, Any]] | None = None) -> None:
        if isinstance(init_cfg, dict) and init_cfg.get("type") == "Pretrained":
            # mmengine would load it non-strictly under mmseg's names (matching nothing of an MAE
            # checkpoint): it goes through the same strict MAE mapping as init_checkpoint
            pretrained = init_cfg.get("checkpoint")
            if init_checkpoint and pretrained and init_checkpoint != pretrained:
                raise UserError(f"two initial checkpoints: init_checkpoint={init_checkpoint} and "
                                f"init_cfg=dict(type='Pretrained', checkpoint={pretrained}); keep one (--init)")
            init_checkpoint, init_cfg = init_checkpoint or pretrained, None
        super().__init__(init_cfg)
        self.vit = VisionTransformer(img_size, patch_size, 3, embed_dim, depth, num_heads, mlp_ratio,
                                     drop_path_rate=drop_path_rate, learnable_pos_embed=True, rel_pos=rel_pos,
                                     grad_checkpointing=grad_checkpointing)
        del self.vit.norm
        self.out_indices = tuple(out_indices)
        self.init_checkpoint = init_checkpoint

    def init_weights(self) -> None:
        """Loads init_checkpoint strictly: every encoder key is used; the decoder, classifier
        heads and the final norm are declared drops; the relative position tables start at zero."""
        if not self.init_checkpoint:
            return
        report = load_checkpoint(self.vit, self.init_checkpoint, drop=MAE_DECODER_KEYS + CLASSIFIER_KEYS + ("norm.*",),
                                 allow_missing=("blocks.*.attn.relative_position_bias_table",))
        print_log(f"MAEViT init from {self.init_checkpoint}: {report.summary()}", logger="current")

    def forward(self, imgs: torch.Tensor) -> tuple[torch.Tensor, ...]:
        p = self.vit.patch_size  # pad to whole patches (512 px crops for patch 14 become 518)
        imgs = F.pad(imgs, (0, -imgs.shape[3] % p, 0, -imgs.shape[2] % p))
        return tuple(self.vit.forward_dense(imgs, self.out_indices))
