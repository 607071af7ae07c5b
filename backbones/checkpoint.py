"""Checkpoint key mapping, shared by every task (the files themselves: common/checkpoint_files.py).

Formats read: official MAE checkpoints ({'model': ...}, encoder-only or with decoder, or fine-tuned
with head and fc_norm), this project's own checkpoints (same names, {'model': ...} plus training
state), timm ViT state dicts, and transformers' ViTMAE (ViTMAEForPreTraining or ViTMAEModel) state
dicts, also as the folders their save_pretrained writes. Loading is strict: a key that is neither
used nor declared as dropped is an error that names it.
"""
from __future__ import annotations

import fnmatch
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from common.checkpoint_files import CheckpointError, load_file

from .pos_embed import resample_pos_embed

# Keys that only pre-training has; a task that keeps the encoder declares these as dropped.
MAE_DECODER_KEYS = ("mask_token", "decoder_*", "encoder_mask_token", "pca_*", "tokenizer.*")
# Classification heads of timm / official fine-tuned checkpoints.
CLASSIFIER_KEYS = ("head.*", "fc_norm.*")


def check_same_model(own: Mapping[str, torch.Tensor], sd: Mapping[str, torch.Tensor], source: str) -> None:
    """Resuming or evaluating needs the checkpoint of this very model: the same keys and shapes
    (own: the model's state dict). Raises CheckpointError naming the file and the differences."""
    missing, unexpected = sorted(own.keys() - sd.keys()), sorted(sd.keys() - own.keys())
    reshaped = [f"{k} {tuple(sd[k].shape)} (the model has {tuple(own[k].shape)})" for k in sorted(own.keys() & sd.keys())
                if sd[k].shape != own[k].shape]
    if not (missing or unexpected or reshaped):
        return
    found = [f"{len(missing)} missing keys ({_short(missing, 3)})" if missing else "",
             f"{len(unexpected)} unexpected keys ({_short(unexpected, 3)})" if unexpected else "",
             f"other shapes: {_short(reshaped, 2)}" if reshaped else ""]
    raise CheckpointError(f"{source} was written for another model ({'; '.join(f for f in found if f)}): use the config "
                          f"that wrote it, or a new output directory to start afresh")


def state_dict_of(obj: object, source: str = "checkpoint") -> dict[str, torch.Tensor]:
    """The model state dict inside a checkpoint object (read from source), converted to official MAE names."""
    if isinstance(obj, dict) and isinstance(obj.get("model"), dict):
        obj = obj["model"]
    elif isinstance(obj, dict) and isinstance(obj.get("state_dict"), dict):
        obj = obj["state_dict"]
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise CheckpointError(f"{source} holds no state dict of tensors (looked at 'model', 'state_dict' and the "
                              f"top level)")
    if any(k.startswith(("vit.embeddings.", "embeddings.patch_embeddings.")) for k in obj):
        obj = hf_vitmae_to_official(obj)
    return obj


# transformers ViTMAE <-> official names, per layer: (HF suffix, official suffix)
_HF_LAYER = [
    ("layernorm_before", "norm1"), ("attention.output.dense", "attn.proj"),
    ("layernorm_after", "norm2"), ("intermediate.dense", "mlp.fc1"), ("output.dense", "mlp.fc2"),
]
_HF_TOP = [
    ("vit.embeddings.cls_token", "cls_token"), ("vit.embeddings.position_embeddings", "pos_embed"),
    ("vit.embeddings.patch_embeddings.projection", "patch_embed.proj"), ("vit.layernorm", "norm"),
    ("decoder.mask_token", "mask_token"), ("decoder.decoder_pos_embed", "decoder_pos_embed"),
    ("decoder.decoder_embed", "decoder_embed"), ("decoder.decoder_norm", "decoder_norm"),
    ("decoder.decoder_pred", "decoder_pred"),
]
_HF_STACKS = [("vit.encoder.layer", "blocks"), ("decoder.decoder_layers", "decoder_blocks")]


def hf_vitmae_to_official(sd: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    if not any(k.startswith("vit.") for k in sd):  # a bare ViTMAEModel
        sd = {("vit." + k): v for k, v in sd.items()}
    out = {}
    for key, value in sd.items():
        new = _map_hf_key(key)
        if new is None:
            raise CheckpointError(f"unknown transformers ViTMAE key: {key}")
        out[new] = value
    for _hf_stack, stack in _HF_STACKS:  # separate q, k, v -> one qkv
        for prefix in sorted({m.group(0) for k in out if (m := re.match(rf"{stack}\.\d+\.attn\.", k))}):
            for kind in ("weight", "bias"):
                parts = [out.pop(f"{prefix}{p}.{kind}") for p in ("query", "key", "value") if f"{prefix}{p}.{kind}" in out]
                if parts:
                    out[f"{prefix}qkv.{kind}"] = torch.cat(parts, 0)
    return out


def _map_hf_key(key):
    for hf, official in _HF_TOP:
        if key == hf or key.startswith(hf + "."):
            return official + key[len(hf):]
    for hf_stack, stack in _HF_STACKS:
        m = re.match(rf"{re.escape(hf_stack)}\.(\d+)\.(.+)$", key)
        if not m:
            continue
        i, rest = m.groups()
        for q in ("query", "key", "value"):
            if rest.startswith(f"attention.attention.{q}."):
                return f"{stack}.{i}.attn.{q}.{rest.rsplit('.', 1)[1]}"
        for hf, official in _HF_LAYER:
            if rest.startswith(hf + "."):
                return f"{stack}.{i}.{official}.{rest.rsplit('.', 1)[1]}"
    return None


def official_to_hf_vitmae(sd: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Official MAE names -> transformers ViTMAEForPreTraining names (q, k, v split)."""
    out = {}
    for key, value in sd.items():
        for hf_stack, stack in _HF_STACKS:
            m = re.match(rf"{stack}\.(\d+)\.(.+)$", key)
            if m:
                i, rest = m.groups()
                if rest.startswith("attn.qkv."):
                    kind = rest.rsplit(".", 1)[1]
                    for q, part in zip(("query", "key", "value"), value.chunk(3, 0)):
                        out[f"{hf_stack}.{i}.attention.attention.{q}.{kind}"] = part
                else:
                    hf = next(h for h, o in _HF_LAYER if rest.startswith(o + "."))
                    out[f"{hf_stack}.{i}.{hf}.{rest.rsplit('.', 1)[1]}"] = value
                break
        else:
            hf, official = next((h, o) for h, o in _HF_TOP if key == o or key.startswith(o + "."))
            out[hf + key[len(official):]] = value
    return out


@dataclass
class LoadReport:
    loaded: list = field(default_factory=list)
    dropped: list = field(default_factory=list)
    resampled: list = field(default_factory=list)

    def summary(self) -> str:
        lines = [f"loaded {len(self.loaded)} tensors"]
        if self.dropped:
            lines.append(f"dropped {len(self.dropped)} declared keys: {_short(self.dropped)}")
        if self.resampled:
            lines.append("resampled: " + ", ".join(self.resampled))
        return "; ".join(lines)


def _short(keys, limit=12):
    keys = sorted(keys)
    return ", ".join(keys[:limit]) + (f", ... ({len(keys) - limit} more)" if len(keys) > limit else "")


def _matches(key, patterns):
    return any(fnmatch.fnmatchcase(key, p) for p in patterns)


def load_state_dict(model: nn.Module, sd: Mapping[str, torch.Tensor], drop: Sequence[str] = (),
                    allow_missing: Sequence[str] = (), source: str = "checkpoint") -> LoadReport:
    """Strictly loads official-named tensors into model.

    drop: glob patterns of checkpoint keys the caller deliberately does not use (reported).
    allow_missing: glob patterns of model keys that may stay at their initial values (new heads,
    relative-position tables that start at zero). Position embeddings of another grid are resampled.
    Anything else missing or unexpected raises CheckpointError naming the keys.
    """
    own = model.state_dict()
    report = LoadReport()
    used, unexpected = {}, []
    for key, value in sd.items():
        if _matches(key, drop):
            report.dropped.append(key)
            continue
        if key not in own:
            unexpected.append(key)
            continue
        if key in ("pos_embed", "decoder_pos_embed") and value.shape != own[key].shape:
            value = _resample_for(model, value)
            report.resampled.append(f"{key} {tuple(sd[key].shape)} -> {tuple(value.shape)}")
        if key == "patch_embed.proj.weight" and value.shape[:2] == own[key].shape[:2] and value.shape != own[key].shape:
            # another patch size (e.g. ViT-H/14 used with 16 px patches for detection, as ViTDet does)
            value = F.interpolate(value.float(), size=own[key].shape[2:], mode="bicubic", align_corners=False).to(value.dtype)
            report.resampled.append(f"{key} {tuple(sd[key].shape)} -> {tuple(value.shape)}")
        if value.shape != own[key].shape:
            raise CheckpointError(f"{source}: shape of {key} is {tuple(value.shape)}, the model expects {tuple(own[key].shape)}")
        used[key] = value
    missing = [k for k in own if k not in used and not _matches(k, allow_missing) and not _matches(k, drop)]
    if unexpected or missing:
        msg = [f"{source} does not match the model"]
        if missing:
            msg.append(f"missing keys: {_short(missing)}")
        if unexpected:
            msg.append(f"unexpected keys: {_short(unexpected)} (declare them in drop= if they are meant to be ignored)")
        raise CheckpointError("; ".join(msg))
    model.load_state_dict(used, strict=False)
    report.loaded = sorted(used)
    return report


def _resample_for(model, value):
    """Resamples a square-grid checkpoint embedding to the model's table grid (model.pos_embed_grid)."""
    return resample_pos_embed(value, model.pos_embed_grid, getattr(model, "num_prefix_tokens", 1))


def load_checkpoint(model: nn.Module, path: str, drop: Sequence[str] = (), allow_missing: Sequence[str] = ()) -> LoadReport:
    """load_file + state_dict_of + load_state_dict; returns the LoadReport."""
    return load_state_dict(model, state_dict_of(load_file(path), path), drop, allow_missing, source=path)
