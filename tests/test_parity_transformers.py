"""Parity with a real peer: transformers' ViTMAEForPreTraining, weights converted both ways."""
import os

import pytest
import torch
from transformers import ViTMAEConfig, ViTMAEForPreTraining, ViTMAEModel

from backbones.checkpoint import load_checkpoint, official_to_hf_vitmae, state_dict_of
from cls_transfer.models import build_classifier, load_pretrained
from common.checkpoint_files import CheckpointError
from conftest import tiny_mae_kwargs
from pretrain import MaskedAutoencoder


def _hf_peer(norm_pix_loss, mask_ratio):
    cfg = ViTMAEConfig(hidden_size=64, num_hidden_layers=2, num_attention_heads=4, intermediate_size=256,
                       image_size=32, patch_size=8, decoder_hidden_size=32, decoder_num_hidden_layers=2,
                       decoder_num_attention_heads=4, decoder_intermediate_size=128, layer_norm_eps=1e-6,
                       mask_ratio=mask_ratio, norm_pix_loss=norm_pix_loss, qkv_bias=True)
    return ViTMAEForPreTraining(cfg).eval()


@pytest.mark.parametrize("norm_pix_loss", [False, True])
@pytest.mark.parametrize("direction", ["ours_to_hf", "hf_to_ours"])
def test_loss_and_pred_match_transformers(norm_pix_loss, direction):
    ours = MaskedAutoencoder(**tiny_mae_kwargs(norm_pix_loss=norm_pix_loss)).eval()
    peer = _hf_peer(norm_pix_loss, 0.75)
    if direction == "ours_to_hf":
        peer.load_state_dict(official_to_hf_vitmae(ours.state_dict()), strict=True)
    else:
        ours.load_state_dict(state_dict_of(peer.state_dict()), strict=True)
    imgs = torch.randn(3, 3, 32, 32)
    noise = torch.rand(3, 16)
    with torch.no_grad():
        loss, pred, mask = ours(imgs, mask_ratio=0.75, noise=noise)
        out = peer(pixel_values=imgs, noise=noise)
    torch.testing.assert_close(mask, out.mask, atol=0, rtol=0)
    torch.testing.assert_close(pred, out.logits, atol=1e-5, rtol=0)
    torch.testing.assert_close(loss, out.loss, atol=1e-5, rtol=0)


def test_trained_weights_still_match():
    """After a few optimizer steps the weights are no longer at their initial values: still equal."""
    ours = MaskedAutoencoder(**tiny_mae_kwargs())
    opt = torch.optim.AdamW(ours.parameters(), lr=1e-2)
    for _ in range(3):
        ours(torch.randn(2, 3, 32, 32))[0].backward()
        opt.step()
        opt.zero_grad()
    ours.eval()
    peer = _hf_peer(False, 0.75)
    peer.load_state_dict(official_to_hf_vitmae(ours.state_dict()), strict=True)
    imgs, noise = torch.randn(2, 3, 32, 32), torch.rand(2, 16)
    with torch.no_grad():
        loss, pred, _ = ours(imgs, noise=noise)
        out = peer(pixel_values=imgs, noise=noise)
    torch.testing.assert_close(pred, out.logits, atol=1e-5, rtol=0)
    torch.testing.assert_close(loss, out.loss, atol=1e-5, rtol=0)


def test_bf16_fast_path_is_at_least_as_accurate_as_the_peer():
    """Under CPU bf16 autocast our attention runs in fp32 (faster there): its error against the
    fp32 result must not exceed the peer's error in the same precision."""
    ours = MaskedAutoencoder(**tiny_mae_kwargs(norm_pix_loss=True)).eval()
    peer = _hf_peer(True, 0.75)
    peer.load_state_dict(official_to_hf_vitmae(ours.state_dict()), strict=True)
    imgs, noise = torch.randn(4, 3, 32, 32), torch.rand(4, 16)
    with torch.no_grad():
        _, ref, _ = ours(imgs, noise=noise)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            _, pred, _ = ours(imgs, noise=noise)
            peer_pred = peer(pixel_values=imgs, noise=noise).logits
    ours_err = (pred.float() - ref).abs().mean()
    peer_err = (peer_pred.float() - ref).abs().mean()
    assert pred.dtype == torch.bfloat16 and 0 < ours_err <= peer_err * 1.05, (ours_err, peer_err)


def test_save_pretrained_folders_load_as_the_parity_mapping(tmp_path):
    """--init DIR with a transformers save_pretrained folder (safetensors, pytorch_model.bin, or a bare
    ViTMAEModel) gives exactly the weights of the mapping above; a cut-short weights file is named."""
    peer = _hf_peer(False, 0.75)
    encoder = ViTMAEModel(peer.config)
    encoder.load_state_dict(peer.vit.state_dict())
    peer.save_pretrained(tmp_path / "safetensors")
    peer.save_pretrained(tmp_path / "bin", safe_serialization=False)
    encoder.save_pretrained(tmp_path / "encoder")
    assert sorted(os.listdir(tmp_path / "bin")) == ["config.json", "pytorch_model.bin"]
    expected = state_dict_of(peer.state_dict())
    for folder in ("safetensors", "bin"):
        ours = MaskedAutoencoder(**tiny_mae_kwargs())
        load_checkpoint(ours, str(tmp_path / folder))
        assert all(torch.equal(ours.state_dict()[k], v) for k, v in expected.items()), folder
    classifier = build_classifier("vit_tiny_patch16", 5, img_size=32, patch_size=8, embed_dim=64, depth=2, num_heads=4)
    load_pretrained(classifier, str(tmp_path / "encoder"))  # what --init DIR of tools/train_cls.py does
    own = classifier.state_dict()
    assert all(torch.equal(own[k], expected[k]) for k in expected if k in own) and "blocks.1.attn.qkv.weight" in own
    weights = tmp_path / "safetensors" / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:100])
    with pytest.raises(CheckpointError, match=rf"cannot load checkpoint {weights} \(truncated, or not a safetensors"):
        load_checkpoint(MaskedAutoencoder(**tiny_mae_kwargs()), str(tmp_path / "safetensors"))
