"""Parity with a real peer: transformers' ViTMAEForPreTraining, weights converted both ways."""
import pytest
import torch
from transformers import ViTMAEConfig, ViTMAEForPreTraining

from backbones.checkpoint import official_to_hf_vitmae, state_dict_of
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
