"""Parity with MMSegmentation 1.2.2's MAE UperNet, built from the installed mmseg's own config
(configs/mae/mae-base_upernet_8xb2-amp-160k_ade20k-512x512.py) on the same weights: backbone
features, neck and head logits, and LayerDecayOptimizerConstructor's per-parameter lr scale and
weight decay; the recipe fields of configs/seg/upernet_vit_b.py against that config. CPU-sized:
128 px, 4 blocks of width 64, 64-channel heads, non-zero relative position bias tables."""
import copy
import os

import mmseg
import pytest
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmseg.registry import MODELS, OPTIM_WRAPPER_CONSTRUCTORS

import seg  # noqa: F401  (registers the modules)
from seg.distributed import use_plain_batchnorm

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

REFERENCE = os.path.join(os.path.dirname(mmseg.__file__), ".mim", "configs", "mae",
                         "mae-base_upernet_8xb2-amp-160k_ade20k-512x512.py")
SIZE, DIM, DEPTH, HEADS, CLASSES, CHANNELS = 128, 64, 4, 4, 5, 64
OUT = (0, 1, 2, 3)


def _reduce(model, backbone):
    model.backbone.update(backbone)
    model.neck.setdefault("norm_cfg", dict(type="SyncBN", requires_grad=True))  # Feature2Pyramid's default
    model.neck.embed_dim = DIM
    model.decode_head.update(in_channels=[DIM] * 4, channels=CHANNELS, num_classes=CLASSES)
    model.auxiliary_head.update(in_channels=DIM, channels=CHANNELS, num_classes=CLASSES)
    use_plain_batchnorm(model)  # one process
    return model


def reference_config():
    return Config.fromfile(REFERENCE)


def ours_config():
    return Config.fromfile(os.path.join(ROOT, "configs/seg/upernet_vit_b.py"))


def _to_ours(name):
    """mmseg MAE / Feature2Pyramid parameter names -> this project's (the heads are mmseg's in both)."""
    rename = [("backbone.patch_embed.projection.", "backbone.vit.patch_embed.proj."), ("backbone.layers.", "backbone.vit.blocks."),
              (".ln1.", ".norm1."), (".ln2.", ".norm2."), (".ffn.layers.0.0.", ".mlp.fc1."), (".ffn.layers.1.", ".mlp.fc2."),
              ("neck.upsample_4x.", "neck.resample.resamplers.0."), ("neck.upsample_2x.0.", "neck.resample.resamplers.1.")]
    if name in ("backbone.cls_token", "backbone.pos_embed"):
        return name.replace("backbone.", "backbone.vit.")
    for a, b in rename:
        name = name.replace(a, b)
    return name


def build_models():
    init_default_scope("mmseg")  # as the configs' default_scope
    torch.manual_seed(0)
    ref_cfg = reference_config().model
    ref_cfg.pretrained = None
    ref = MODELS.build(_reduce(ref_cfg, dict(img_size=(SIZE, SIZE), embed_dims=DIM, num_layers=DEPTH, num_heads=HEADS,
                                             drop_path_rate=0.0, out_indices=list(OUT)))).eval()
    ours = MODELS.build(_reduce(ours_config().model, dict(img_size=SIZE, embed_dim=DIM, depth=DEPTH, num_heads=HEADS,
                                                          drop_path_rate=0.0, out_indices=OUT))).eval()
    state = ref.state_dict()
    for name, value in state.items():
        if "relative_position_bias_table" in name or name.endswith(("pos_embed", "cls_token")):
            value.normal_(0, 0.5)
        elif name.endswith(("running_mean", "running_var")):
            value.uniform_(0.5, 1.5)
    ref.load_state_dict(state)
    gammas = {k for k in state if ".gamma_" in k}  # mmseg's layer scales, 1.0 (init_values=1.0): no parameter of ours
    assert gammas and all(torch.equal(state[k], torch.ones_like(state[k])) for k in gammas)
    mapped = {_to_ours(k): v for k, v in state.items() if k not in gammas and not k.endswith("relative_position_index")}
    ours.load_state_dict(mapped, strict=True)
    return ref, ours


@pytest.fixture(scope="module")
def models():
    torch.set_num_threads(1)
    return build_models()


@torch.no_grad()
def test_features_and_logits_match_mmseg(models):
    ref, ours = models
    images = torch.randn(2, 3, SIZE, SIZE)
    feats_ref, feats_ours = ref.backbone(images), ours.backbone(images)
    for a, b in zip(feats_ref, feats_ours, strict=True):
        assert (a - b).abs().max() < 1e-4  # measured: 7e-7
    pyr_ref, pyr_ours = ref.neck(feats_ref), ours.neck(feats_ours)
    for a, b in zip(pyr_ref, pyr_ours, strict=True):
        assert a.shape == b.shape and (a - b).abs().max() < 1e-4
    logits_ref, logits_ours = ref._forward(images), ours._forward(images)
    assert logits_ref.shape == (2, CLASSES, SIZE // 4, SIZE // 4)
    assert (logits_ref - logits_ours).abs().max() < 1e-4  # measured: 1.5e-6
    aux_ref, aux_ours = ref.auxiliary_head(pyr_ref), ours.auxiliary_head(pyr_ours)
    assert (aux_ref - aux_ours).abs().max() < 1e-4


def test_optimizer_groups_match_mmseg_per_parameter(models):
    ref, ours = models
    ref_wrapper = copy.deepcopy(reference_config().optim_wrapper)
    ref_wrapper.pop("_delete_", None)
    constructor, paramwise = ref_wrapper.pop("constructor"), ref_wrapper.pop("paramwise_cfg")
    paramwise.num_layers = DEPTH
    ref_opt = OPTIM_WRAPPER_CONSTRUCTORS.build(dict(type=constructor, optim_wrapper_cfg=ref_wrapper,
                                                    paramwise_cfg=paramwise))(ref).optimizer
    ours_wrapper = copy.deepcopy(ours_config().optim_wrapper)
    constructor, paramwise = ours_wrapper.pop("constructor"), ours_wrapper.pop("paramwise_cfg")
    ours_opt = OPTIM_WRAPPER_CONSTRUCTORS.build(dict(type=constructor, optim_wrapper_cfg=ours_wrapper,
                                                     paramwise_cfg=paramwise))(ours).optimizer

    def per_param(optimizer, rename=lambda n: n):
        return {rename(n): (g["lr"], g["weight_decay"]) for g in optimizer.param_groups for n in g["param_names"]}

    a = {k: v for k, v in per_param(ref_opt, _to_ours).items() if ".gamma_" not in k}
    b = per_param(ours_opt)
    assert set(a) == set(b)
    for name in a:
        assert b[name][0] == pytest.approx(a[name][0], rel=1e-12), name
        assert b[name][1] == a[name][1], name
    # as the reference runs: the position tables are decayed, 1-D parameters are not
    for name in ("backbone.vit.pos_embed", "backbone.vit.cls_token", "backbone.vit.blocks.0.attn.relative_position_bias_table"):
        assert b[name][1] == 0.05, name
    assert b["backbone.vit.blocks.0.norm1.weight"][1] == 0 and b["neck.resample.resamplers.0.1.weight"][1] == 0


def test_recipe_fields_equal_the_mmseg_config():
    ref, ours = reference_config(), ours_config()
    assert ours.optim_wrapper.optimizer == ref.optim_wrapper.optimizer  # AdamW 1e-4, (0.9, 0.999), wd 0.05
    assert ours.optim_wrapper.paramwise_cfg.layer_decay == ref.optim_wrapper.paramwise_cfg.layer_decay_rate
    assert ours.param_scheduler[0] == ref.param_scheduler[0]  # 1500 linear warm-up iterations from 1e-6
    poly_ref = {k: v for k, v in ref.param_scheduler[1].items() if k not in ("end", "type")}
    assert ours.param_scheduler[1] == dict(poly_ref, type="RunLengthPolyLR")  # PolyLR, its end set by the runner
    assert ours.train_pipeline == ref.train_pipeline and ours.test_pipeline == ref.test_pipeline
    assert ours.train_dataloader.batch_size == ref.train_dataloader.batch_size == 2
    assert ours.model.test_cfg == ref.model.test_cfg and ours.model.data_preprocessor == ref.model.data_preprocessor
    for head in ("decode_head", "auxiliary_head"):
        fields = set(ref.model[head]) - {"in_channels"}
        assert {k: ours.model[head][k] for k in fields} == {k: ref.model[head][k] for k in fields}, head
    backbone = ref.model.backbone
    assert (backbone.drop_path_rate, tuple(backbone.out_indices)) == (ours.model.backbone.drop_path_rate,
                                                                      ours.model.backbone.out_indices)
    assert ours.model.neck.norm_cfg == ref.model.decode_head.norm_cfg == dict(type="SyncBN", requires_grad=True)
    # the deliberate difference: the paper's 100 epochs at batch 16 on 20,210 images, not 160k
    assert (ref.train_cfg.max_iters, ours.train_cfg.max_iters) == (160000, 20210 * 100 // 16)
