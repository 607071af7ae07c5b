"""The shared MAE ViT inside MMSegmentation: a backbone, the shared pyramid neck and the shared
layer-wise lr decay and the poly decay that ends with the run, registered in mmseg's registries. Config files load it with
`custom_imports = dict(imports=["seg"])`."""
from .backbone import MAEViT
from .checkpoint_safety import (
    history_buffers_without_functions,
    load_checkpoints_safely,
    mmengine_checkpoint_globals,
    write_checkpoints_atomically,
)
from .data_checks import CheckSegMap, files_under, image_suffix
from .distributed import CPUDistributedDataParallel, GlooSyncBatchNorm
from .hooks import FinalValidation, StopAtSignal
from .neck import MultiScaleNeck
from .optim import LayerDecayOptimWrapperConstructor
from .schedule import RunLengthPolyLR

# mmengine's runner writes checkpoints atomically and loads them under weights_only (checkpoint_safety.py)
write_checkpoints_atomically()
load_checkpoints_safely()

__all__ = ["CPUDistributedDataParallel", "CheckSegMap", "FinalValidation", "GlooSyncBatchNorm", "MAEViT",
           "MultiScaleNeck", "LayerDecayOptimWrapperConstructor", "RunLengthPolyLR", "StopAtSignal", "files_under",
           "history_buffers_without_functions", "image_suffix", "load_checkpoints_safely", "mmengine_checkpoint_globals",
           "write_checkpoints_atomically"]
