"""The shared MAE Vision Transformer: the model, its position embeddings, the layer-decay rule, the
multi-scale pyramid and the checkpoint key mapping (no detectron2/mmseg imports; training plumbing
lives in common/)."""
from .checkpoint import (CLASSIFIER_KEYS, MAE_DECODER_KEYS, LoadReport, check_same_model, load_checkpoint,
                         load_state_dict, state_dict_of)
from .param_groups import layer_id, param_groups
from .pos_embed import resample_pos_embed, sincos_2d
from .vit import VIT_SIZES, Block, VisionTransformer, build_vit

__all__ = [
    "Block", "CLASSIFIER_KEYS", "LoadReport", "MAE_DECODER_KEYS", "VIT_SIZES", "VisionTransformer", "build_vit",
    "check_same_model", "layer_id", "load_checkpoint", "load_state_dict", "param_groups", "resample_pos_embed",
    "sincos_2d", "state_dict_of",
]
