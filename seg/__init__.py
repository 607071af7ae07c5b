"""The shared MAE ViT inside MMSegmentation: a backbone, the shared pyramid neck and the shared
layer-wise lr decay and the poly decay that ends with the run, registered in mmseg's registries. Config files load it with
`custom_imports = dict(imports=["seg"])`."""
from .backbone import MAEViT
from .checkpoint_safety import allow_mmengine_checkpoints, write_checkpoints_atomically
from .data_checks import CheckSegMap
from .neck import MultiScaleNeck
from .optim import LayerDecayOptimWrapperConstructor
from .schedule import RunLengthPolyLR

allow_mmengine_checkpoints()
write_checkpoints_atomically()

__all__ = ["CheckSegMap", "MAEViT", "MultiScaleNeck", "LayerDecayOptimWrapperConstructor", "RunLengthPolyLR",
           "allow_mmengine_checkpoints", "write_checkpoints_atomically"]
