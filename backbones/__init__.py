"""The shared MAE Vision Transformer and the pieces every task uses (no detectron2/mmseg imports)."""
from .checkpoint import (CLASSIFIER_KEYS, MAE_DECODER_KEYS, CheckpointError, LoadReport, check_same_model,
                         load_checkpoint, load_file, load_state_dict, save_file, state_dict_of)
from .errors import UserError
from .param_groups import layer_id, param_groups
from .pos_embed import resample_pos_embed, sincos_2d
from .vit import VIT_SIZES, Block, VisionTransformer, build_vit

__all__ = [
    "Block", "CheckpointError", "CLASSIFIER_KEYS", "LoadReport", "MAE_DECODER_KEYS", "UserError", "VIT_SIZES",
    "VisionTransformer", "build_vit", "check_same_model", "layer_id", "load_checkpoint", "load_file", "load_state_dict",
    "param_groups", "resample_pos_embed", "save_file", "sincos_2d", "state_dict_of",
]
