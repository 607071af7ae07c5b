from mmengine.model import BaseModule
from mmseg.registry import MODELS

from backbones.pyramid import MultiScaleResample


@MODELS.register_module()
class MultiScaleNeck(BaseModule):
    """The shared pyramid resampling (backbones.pyramid) as an mmseg neck: four stride-16 maps to
    strides 4, 8, 16 and 32."""

    def __init__(self, embed_dim, scales=(4, 2, 1, 0.5), norm="bn", init_cfg=None):
        super().__init__(init_cfg)
        self.resample = MultiScaleResample(embed_dim, scales, norm)

    def forward(self, inputs):
        return tuple(self.resample(list(inputs)))
