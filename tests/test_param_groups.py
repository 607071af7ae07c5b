import pytest
import torch
import torch.nn as nn

from backbones import VisionTransformer, layer_id, param_groups


def test_layer_ids_follow_the_shared_rule():
    assert layer_id("patch_embed.proj.weight", 12) == 0
    assert layer_id("cls_token", 12) == 0 and layer_id("pos_embed", 12) == 0
    assert layer_id("blocks.0.attn.qkv.weight", 12) == 1
    assert layer_id("blocks.11.mlp.fc2.bias", 12) == 12
    assert layer_id("norm.weight", 12) == 13 and layer_id("head.weight", 12) == 13
    # nested inside a detector or a segmentor
    assert layer_id("backbone.net.blocks.3.norm1.weight", 12) == 4
    assert layer_id("backbone.net.pos_embed", 12) == 0
    assert layer_id("decoder_blocks.3.norm1.weight", 12) == 13


def test_lr_scales_and_weight_decay():
    vit = VisionTransformer(img_size=32, patch_size=8, embed_dim=64, depth=4, num_heads=4, learnable_pos_embed=True)
    model = nn.ModuleDict({"backbone": vit, "head": nn.Linear(64, 10)})
    groups = param_groups(model, weight_decay=0.05, layer_decay=0.75)
    by_name = {n: g for g in groups for n in g["param_names"]}
    assert len(by_name) == sum(1 for _ in model.parameters())
    assert by_name["head.weight"]["lr_scale"] == 1.0
    assert by_name["backbone.blocks.3.attn.qkv.weight"]["lr_scale"] == 0.75
    assert by_name["backbone.blocks.0.attn.qkv.weight"]["lr_scale"] == 0.75**4
    assert by_name["backbone.patch_embed.proj.weight"]["lr_scale"] == 0.75**5
    assert by_name["backbone.pos_embed"]["lr_scale"] == 0.75**5
    for name, wd in [("backbone.pos_embed", 0.0), ("backbone.cls_token", 0.0), ("backbone.blocks.0.norm1.weight", 0.0),
                     ("backbone.blocks.0.attn.qkv.bias", 0.0), ("backbone.blocks.0.attn.qkv.weight", 0.05),
                     ("head.weight", 0.05), ("head.bias", 0.0)]:
        assert by_name[name]["weight_decay"] == wd, name


def test_frozen_parameters_are_left_out():
    vit = VisionTransformer(img_size=32, patch_size=8, embed_dim=64, depth=2, num_heads=4)  # fixed pos_embed
    names = [n for g in param_groups(vit, 0.05) for n in g["param_names"]]
    assert "pos_embed" not in names and "cls_token" in names


def test_decay_rules_exempt_what_each_reference_exempts():
    class OtherNorm(nn.Module):  # a norm that is no torch normalisation layer (as Detectron2's LayerNorm)
        def __init__(self):
            super().__init__()
            self.weight = nn.Parameter(torch.ones(8))

    vit = VisionTransformer(img_size=32, patch_size=8, embed_dim=64, depth=2, num_heads=4, learnable_pos_embed=True,
                            rel_pos="decomposed", window_size=2)
    model = nn.ModuleDict({"backbone": vit, "neck": nn.Sequential(nn.Conv2d(64, 8, 1), nn.BatchNorm2d(8), OtherNorm())})
    names = ["backbone.pos_embed", "backbone.cls_token", "backbone.blocks.0.attn.rel_pos_h", "backbone.blocks.0.norm1.weight",
             "backbone.blocks.0.attn.qkv.bias", "backbone.blocks.0.attn.qkv.weight", "neck.0.bias", "neck.1.weight",
             "neck.2.weight"]
    expected = {  # 1 = decayed, in the order of names
        "mae": [0, 0, 0, 0, 0, 1, 0, 0, 0],
        "1d": [1, 1, 1, 0, 0, 1, 0, 0, 0],
        "vitdet": [0, 1, 1, 0, 1, 1, 1, 0, 1],
        "all": [1] * 9,
    }
    for rule, decayed in expected.items():
        wd = {n: g["weight_decay"] for g in param_groups(model, 0.1, decay_rule=rule) for n in g["param_names"]}
        assert [int(wd[n] > 0) for n in names] == decayed, rule
    with pytest.raises(ValueError, match="decay_rule must be one of"):
        param_groups(model, 0.1, decay_rule="timm")
