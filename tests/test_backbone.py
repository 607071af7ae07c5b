import pytest
import timm
import torch
from transformers.models.vit_mae.modeling_vit_mae import get_2d_sincos_pos_embed

from backbones import VisionTransformer, build_vit, resample_pos_embed, sincos_2d


def tiny_vit(**kw):
    args = dict(img_size=32, patch_size=8, embed_dim=64, depth=2, num_heads=4)
    args.update(kw)
    return VisionTransformer(**args).eval()


def test_names_and_outputs_match_timm_vit():
    ref = timm.models.vision_transformer.VisionTransformer(
        img_size=32, patch_size=8, embed_dim=64, depth=2, num_heads=4, num_classes=0).eval()
    ours = tiny_vit()
    assert set(ours.state_dict()) == set(ref.state_dict())
    ours.load_state_dict(ref.state_dict(), strict=True)
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(ours(x), ref.forward_features(x), atol=1e-5, rtol=0)


@pytest.mark.parametrize("name,paper_millions", [("vit_base_patch16", 86), ("vit_large_patch16", 304), ("vit_huge_patch14", 632)])
def test_parameter_counts_match_paper(name, paper_millions):
    with torch.device("meta"):
        model = build_vit(name)
    count = sum(p.numel() for p in model.parameters()) / 1e6
    assert abs(count - paper_millions) / paper_millions < 0.005, count


def test_sincos_matches_official_formula_and_handles_rectangles():
    official = torch.from_numpy(get_2d_sincos_pos_embed(64, 7, add_cls_token=True)).float()
    torch.testing.assert_close(sincos_2d(64, 7, 1)[0], official, atol=1e-6, rtol=0)
    rect = sincos_2d(64, (3, 5))[0].reshape(3, 5, 64)
    # first half of channels depends on the column only, second half on the row only
    torch.testing.assert_close(rect[0, :, :32], rect[2, :, :32])
    torch.testing.assert_close(rect[:, 0, 32:], rect[:, 4, 32:])
    assert not torch.allclose(rect[0, 0, :32], rect[0, 1, :32])


def test_pos_embed_resampling_to_rectangular_grid():
    pos = sincos_2d(64, 14, 1)
    out = resample_pos_embed(pos, (32, 20), 1)
    assert out.shape == (1, 1 + 32 * 20, 64)
    torch.testing.assert_close(out[:, :1], pos[:, :1])
    assert resample_pos_embed(pos, 14, 1) is pos
    # a model fed a larger image resamples on the fly
    model = tiny_vit()
    assert model(torch.randn(1, 3, 48, 64)).shape == (1, 1 + 6 * 8, 64)


def test_window_of_the_whole_grid_equals_global_attention():
    ref = tiny_vit()
    windowed = tiny_vit(window_size=4)
    windowed.load_state_dict(ref.state_dict())
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        a = ref.forward_features(x, cls_token=False)[0]
        b = windowed.forward_features(x, cls_token=False)[0]
    torch.testing.assert_close(a, b, atol=1e-5, rtol=0)


def test_windowed_attention_is_local_and_pads_odd_grids():
    model = tiny_vit(depth=1, window_size=2, img_size=40)  # 5x5 grid, padded to 6x6
    x = torch.randn(1, 3, 40, 40)
    y = x.clone()
    y[..., :8, :8] += 1.0  # changes patch (0, 0): window rows 0-1, cols 0-1
    with torch.no_grad():
        a = model.forward_features(x, cls_token=False)[0].reshape(5, 5, -1)
        b = model.forward_features(y, cls_token=False)[0].reshape(5, 5, -1)
    changed = (a - b).abs().amax(-1) > 1e-6
    assert changed[:2, :2].all() and changed.sum() == 4
    with pytest.raises(ValueError, match="cls_token=False"):
        model(x)


def test_global_blocks_mix_across_windows():
    model = tiny_vit(depth=2, window_size=2, global_block_indexes=(1,))
    x = torch.randn(1, 3, 32, 32)
    y = x.clone()
    y[..., :8, :8] += 1.0
    with torch.no_grad():
        diff = (model.forward_features(x, cls_token=False)[0] - model.forward_features(y, cls_token=False)[0]).abs()
    assert (diff.amax(-1) > 1e-6).all()


@pytest.mark.parametrize("rel_pos,cls_token", [("bias", True), ("decomposed", False)])
def test_relative_positions_start_at_zero_and_are_used(rel_pos, cls_token):
    ref = tiny_vit()
    model = tiny_vit(rel_pos=rel_pos)
    missing = model.load_state_dict(ref.state_dict(), strict=False).missing_keys
    assert missing and all("rel" in k for k in missing)
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(model.forward_features(x, cls_token=cls_token)[0],
                                   ref.forward_features(x, cls_token=cls_token)[0], atol=1e-5, rtol=0)
        for name, p in model.named_parameters():
            if "rel" in name:
                p.normal_()
        assert not torch.allclose(model.forward_features(x, cls_token=cls_token)[0],
                                  ref.forward_features(x, cls_token=cls_token)[0], atol=1e-3)


def test_grad_checkpointing_gives_the_same_values_and_grads():
    a = tiny_vit().train()
    b = tiny_vit(grad_checkpointing=True).train()
    b.load_state_dict(a.state_dict())
    x = torch.randn(2, 3, 32, 32)
    a(x).square().sum().backward()
    b(x).square().sum().backward()
    for (name, pa), pb in zip(a.named_parameters(), b.parameters()):
        if pa.grad is not None:
            torch.testing.assert_close(pa.grad, pb.grad, atol=1e-5, rtol=1e-4, msg=name)


def test_drop_path_is_random_in_training_only():
    model = tiny_vit(drop_path_rate=0.5).train()
    x = torch.randn(4, 3, 32, 32)
    assert not torch.allclose(model(x), model(x))
    model.eval()
    torch.testing.assert_close(model(x), model(x))


def test_intermediate_block_outputs():
    model = tiny_vit(depth=3)
    x = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        final, outs, grid = model.forward_features(x, out_indices=(0, 2))
        tokens = model.prepend_cls_token(model.embed(x)[0])
        first = model.blocks[0](tokens, grid, 1)
    assert grid == (4, 4) and len(outs) == 2
    torch.testing.assert_close(outs[0], first)
    torch.testing.assert_close(model.norm(outs[1]), final)
