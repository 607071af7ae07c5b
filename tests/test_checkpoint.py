import argparse
import fractions
import os

import pytest
import torch
from conftest import tiny_mae_kwargs

from backbones import MAE_DECODER_KEYS, VisionTransformer, load_checkpoint, state_dict_of
from backbones.checkpoint import official_to_hf_vitmae
from common.checkpoint_files import CheckpointError, load_file, save_file
from pretrain import MaskedAutoencoder

OFFICIAL_DECODER_KEYS = {"mask_token", "decoder_pos_embed", "decoder_embed.weight", "decoder_embed.bias",
                         "decoder_norm.weight", "decoder_norm.bias", "decoder_pred.weight", "decoder_pred.bias"}


def encoder_kwargs():
    kw = tiny_mae_kwargs()
    return {k: kw[k] for k in ("img_size", "patch_size", "embed_dim", "depth", "num_heads")}


def test_mae_state_dict_uses_the_official_names():
    keys = set(MaskedAutoencoder(**tiny_mae_kwargs()).state_dict())
    encoder = set(VisionTransformer(**encoder_kwargs()).state_dict())
    decoder = keys - encoder
    assert encoder <= keys
    assert {k for k in decoder if not k.startswith("decoder_blocks.")} == OFFICIAL_DECODER_KEYS
    assert "decoder_blocks.1.attn.qkv.weight" in decoder and "blocks.1.mlp.fc2.bias" in encoder


def test_official_format_checkpoint_with_args_loads(tmp_path):
    """The official training code saves {'model', 'optimizer', 'epoch', 'args': Namespace}."""
    src = MaskedAutoencoder(**tiny_mae_kwargs())
    path = tmp_path / "official.pth"
    torch.save({"model": src.state_dict(), "epoch": 799, "args": argparse.Namespace(model="mae_vit_tiny")}, path)
    dst = MaskedAutoencoder(**tiny_mae_kwargs())
    report = load_checkpoint(dst, str(path))
    assert not report.dropped and len(report.loaded) == len(src.state_dict())
    for k, v in src.state_dict().items():
        torch.testing.assert_close(dst.state_dict()[k], v)


def test_encoder_load_must_declare_the_decoder(tmp_path):
    path = tmp_path / "mae.pth"
    torch.save({"model": MaskedAutoencoder(**tiny_mae_kwargs()).state_dict()}, path)
    with pytest.raises(CheckpointError, match=r"unexpected keys: decoder_blocks\.0\.attn\.proj\.bias.*more"):
        load_checkpoint(VisionTransformer(**encoder_kwargs()), str(path))
    report = load_checkpoint(VisionTransformer(**encoder_kwargs()), str(path), drop=MAE_DECODER_KEYS)
    assert OFFICIAL_DECODER_KEYS <= set(report.dropped)
    assert "blocks.0.attn.qkv.weight" in report.loaded


def test_missing_keys_are_named(tmp_path):
    sd = VisionTransformer(**encoder_kwargs()).state_dict()
    del sd["blocks.1.norm2.weight"]
    path = tmp_path / "partial.pth"
    torch.save(sd, path)
    with pytest.raises(CheckpointError, match=r"missing keys: blocks\.1\.norm2\.weight"):
        load_checkpoint(VisionTransformer(**encoder_kwargs()), str(path))


def test_pos_embed_is_resampled_for_a_larger_model(tmp_path):
    path = tmp_path / "enc.pth"
    torch.save({"model": VisionTransformer(**encoder_kwargs()).state_dict()}, path)
    big = VisionTransformer(**{**encoder_kwargs(), "img_size": 64})
    report = load_checkpoint(big, str(path))
    assert report.resampled == ["pos_embed (1, 17, 64) -> (1, 65, 64)"]


def test_transformers_state_dict_loads_into_the_backbone():
    hf = official_to_hf_vitmae(MaskedAutoencoder(**tiny_mae_kwargs()).state_dict())
    encoder_only = {k[len("vit."):]: v for k, v in hf.items() if k.startswith("vit.")}  # a ViTMAEModel
    for sd in (hf, encoder_only):
        model = VisionTransformer(**encoder_kwargs())
        model.load_state_dict(state_dict_of(sd) if sd is encoder_only else
                              {k: v for k, v in state_dict_of(sd).items() if k in model.state_dict()})
    assert set(state_dict_of(encoder_only)) == set(VisionTransformer(**encoder_kwargs()).state_dict())


def test_unsafe_pickles_are_refused_with_the_path(tmp_path):
    path = tmp_path / "evil.pth"
    torch.save({"model": {}, "thing": fractions.Fraction(1, 3)}, path)
    with pytest.raises(CheckpointError, match="evil.pth.*weights_only"):
        load_file(str(path))
    with pytest.raises(CheckpointError, match="not found: .*nope.pth"):
        load_file(str(tmp_path / "nope.pth"))


def test_atomic_save_keeps_the_old_file_on_failure(tmp_path):
    path = str(tmp_path / "ckpt.pth")
    save_file({"x": torch.ones(2)}, path)

    class Unpicklable:
        def __reduce__(self):
            raise RuntimeError("disk full (simulated)")

    with pytest.raises(CheckpointError, match="cannot write checkpoint .*ckpt.pth"):
        save_file({"x": torch.zeros(2), "bad": Unpicklable()}, path)
    torch.testing.assert_close(load_file(path)["x"], torch.ones(2))
    assert os.listdir(tmp_path) == ["ckpt.pth"]


class _CallsOsSystem:
    def __reduce__(self):  # what a malicious checkpoint does: os.system is a global of a module torch blocks
        return os.system, ("true",)


def _a_function():
    pass


def test_checkpoints_holding_code_are_refused_for_safety_and_name_it(tmp_path):
    import cloudpickle

    cases = [(f"{os.system.__module__}.system", {"x": _CallsOsSystem()}, {}),
             ("cloudpickle", {"transform": lambda x: x + 1}, {"pickle_module": cloudpickle}),  # a lambda, by value
             (f"{_a_function.__module__}._a_function", {"hook": _a_function}, {})]
    for i, (_, obj, kwargs) in enumerate(cases):
        torch.save({"model": {}, **obj}, tmp_path / f"{i}.pth", **kwargs)
    # a pickle that asks torch to call something it pushed itself (not a global): no file torch.save writes
    (tmp_path / f"{len(cases)}.pth").write_bytes(b"\x80\x02X\x03\x00\x00\x00absq\x00)R.")
    for i, named in enumerate([name for name, _, _ in cases] + ["abs"]):
        with pytest.raises(CheckpointError) as refused:
            load_file(str(tmp_path / f"{i}.pth"))
        message = str(refused.value)
        assert message.startswith(f"cannot load checkpoint {tmp_path}/{i}.pth: it holds objects other than"), message
        assert f"({named}" in message and "refuses for safety" in message and "truncated" not in message, message


def test_a_pickle_protocol_weights_only_does_not_read_is_named_as_such(tmp_path):
    path = tmp_path / "protocol4.pth"
    torch.save({"model": {"w": torch.zeros(2)}}, path, pickle_protocol=4)  # tensors only, still refused
    with pytest.raises(CheckpointError, match=rf"{path}: it is pickled with protocol 4 or later \(instruction FRAME\)"):
        load_file(str(path))


def test_a_folder_without_weights_names_the_file_to_pass(tmp_path):
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(CheckpointError, match=rf"{tmp_path} is a folder without model.safetensors or pytorch_model.bin "
                                              r".*: pass a checkpoint file$"):
        load_file(str(tmp_path))
    save_file({"model": {}}, str(tmp_path / "checkpoint-last.pth"))
    with pytest.raises(CheckpointError, match=r"pass one of its files \(checkpoint-last.pth\)$"):
        load_file(str(tmp_path))
