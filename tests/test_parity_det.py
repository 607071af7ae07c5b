"""Parity with Detectron2's ViTDet, built from the installed detectron2 on the same weights: its ViT +
SimpleFeaturePyramid (p2-p6), the whole Mask R-CNN in eval mode, and its optimizer parameter groups
(get_default_optimizer_params with ViTDet's overrides) for the B, L and H recipes. CPU-sized: 256 px,
8 blocks of width 64, light heads; relative positions and the position table are non-zero, the
table is ViTDet's 14x14 interpolated to the 16x16 grid, and windows of 6 need padding."""
import os
from functools import partial

import pytest
import torch
from detectron2 import model_zoo
from detectron2.config import LazyCall as L
from detectron2.config import LazyConfig, instantiate
from detectron2.layers import ShapeSpec
from detectron2.modeling import ViT
from detectron2.modeling.backbone.vit import get_vit_lr_decay_rate
from detectron2.solver.build import get_default_optimizer_params

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SIZE, DIM, DEPTH, HEADS, WINDOW, CHANNELS = 256, 64, 8, 4, 6, 64
GLOBAL_BLOCKS = (1, 3, 5, 7)  # the ends of 4 equal groups, as ViTDet-B's 2, 5, 8, 11
# ViTDet's optimizer per size (projects/ViTDet/configs/COCO/mask_rcnn_vitdet_{b_100ep,l_100ep,h_75ep}.py):
# lr decay rate, weight_decay_norm, overrides
VITDET_OPTIM = {"b": (0.7, 0.0, {"pos_embed": {"weight_decay": 0.0}}),
                "l": (0.8, 0.0, {"pos_embed": {"weight_decay": 0.0}}),
                "h": (0.9, None, {})}


def _light_heads(cfg):
    """The same CPU-sized heads on both models (64 channels, 100 proposals)."""
    model = cfg.model
    model.backbone.out_channels = CHANNELS
    model.backbone.square_pad = SIZE
    model.proposal_generator.head.in_channels = CHANNELS
    model.proposal_generator.post_nms_topk = (100, 100)
    model.roi_heads.box_head.input_shape = ShapeSpec(channels=CHANNELS, height=7, width=7)
    model.roi_heads.box_head.conv_dims = [CHANNELS] * 2
    model.roi_heads.box_head.fc_dims = [128]
    model.roi_heads.box_predictor.input_shape = ShapeSpec(channels=128)
    model.roi_heads.box_predictor.test_score_thresh = 0.0  # random heads score ~1/81: keep every detection
    model.roi_heads.mask_head.input_shape = ShapeSpec(channels=CHANNELS, width=14, height=14)
    model.roi_heads.mask_head.conv_dims = [CHANNELS] * 2
    return cfg


def build_models():
    """(Detectron2's ViTDet Mask R-CNN, ours with mask_rcnn_vit_b_simple.py's backbone), same weights."""
    torch.manual_seed(0)
    ref_cfg = _light_heads(model_zoo.get_config("common/models/mask_rcnn_vitdet.py", trained=False))
    ref_cfg.model.backbone.net = L(ViT)(
        img_size=SIZE, patch_size=16, embed_dim=DIM, depth=DEPTH, num_heads=HEADS, drop_path_rate=0.0,
        window_size=WINDOW, window_block_indexes=[i for i in range(DEPTH) if i not in GLOBAL_BLOCKS],
        use_rel_pos=True, pretrain_img_size=224, out_feature="last_feat",
        norm_layer=partial(torch.nn.LayerNorm, eps=1e-6))
    ours_cfg = LazyConfig.load(os.path.join(ROOT, "configs/det/mask_rcnn_vit_b_simple.py"))
    ours_cfg.model.backbone.vit.update(img_size=SIZE, embed_dim=DIM, depth=DEPTH, num_heads=HEADS, drop_path_rate=0.0,
                                       window_size=WINDOW)
    ours_cfg = _light_heads(ours_cfg)
    ref, ours = instantiate(ref_cfg.model).eval(), instantiate(ours_cfg.model).eval()
    state = ref.state_dict()
    for name, value in state.items():  # non-zero relative positions and position table
        if "rel_pos" in name or "pos_embed" in name:
            value.normal_(0, 0.5)
    ours.load_state_dict({k.replace("backbone.net.", "backbone.net.vit."): v for k, v in state.items()}, strict=True)
    ref.load_state_dict(state)
    return ref, ours


@pytest.fixture(scope="module")
def models():
    torch.set_num_threads(1)
    return build_models()


def test_windows_global_blocks_and_position_table_match_vitdet(models):
    ref, ours = models
    vit = ours.backbone.net.vit
    assert [b.window_size for b in vit.blocks] == [0 if i in GLOBAL_BLOCKS else WINDOW for i in range(DEPTH)]
    assert [b.window_size for b in vit.blocks] == [blk.window_size for blk in ref.backbone.net.blocks]
    assert vit.pos_embed.shape == ref.backbone.net.pos_embed.shape == (1, 1 + 14 * 14, DIM)


@torch.no_grad()
def test_simple_pyramid_features_match_detectron2(models):
    ref, ours = models
    images = torch.randn(2, 3, SIZE, SIZE)
    a, b = ref.backbone(images), ours.backbone(images)
    assert list(a) == list(b) == ["p2", "p3", "p4", "p5", "p6"]
    for key in a:
        diff = (a[key] - b[key]).abs().max().item()
        assert diff < 1e-4, (key, diff)  # measured: 1.7e-6 (p2) or less


@torch.no_grad()
def test_mask_rcnn_detections_match_detectron2(models):
    ref, ours = models
    g = torch.Generator().manual_seed(1)
    inputs = [{"image": torch.randint(0, 256, (3, 240, 256), generator=g).float(), "height": 240, "width": 256}]
    a, b = ref(inputs)[0]["instances"], ours(inputs)[0]["instances"]
    assert len(a) == len(b) == 100
    assert torch.equal(a.pred_classes, b.pred_classes)
    assert (a.scores - b.scores).abs().max() < 1e-4
    assert (a.pred_boxes.tensor - b.pred_boxes.tensor).abs().max() < 1e-4  # pixels; measured 1.5e-5
    assert (a.pred_masks.float() != b.pred_masks.float()).float().mean() < 1e-3


@pytest.mark.parametrize("size", ["b", "l", "h"])
def test_optimizer_groups_match_vitdet_per_parameter(models, size):
    ref, ours = models
    decay_rate, weight_decay_norm, overrides = VITDET_OPTIM[size]
    ref_params = get_default_optimizer_params(ref, base_lr=1e-4, weight_decay_norm=weight_decay_norm,
                                              lr_factor_func=partial(get_vit_lr_decay_rate, num_layers=DEPTH,
                                                                     lr_decay_rate=decay_rate), overrides=overrides)
    ref_opt = torch.optim.AdamW(ref_params, lr=1e-4, weight_decay=0.1)  # ViTDet's common/optim.py AdamW
    cfg = LazyConfig.load(os.path.join(ROOT, f"configs/det/mask_rcnn_vit_{size}.py"))
    cfg.optimizer.params.model = ours  # as tools/train_det.py does
    ours_opt = instantiate(cfg.optimizer)

    def per_param(model, optimizer, rename=lambda n: n):
        name_of = {p: rename(n) for n, p in model.named_parameters()}
        return {name_of[p]: (g["lr"], g["weight_decay"]) for g in optimizer.param_groups for p in g["params"]}

    a = per_param(ref, ref_opt, lambda n: n.replace("backbone.net.", "backbone.net.vit."))
    b = per_param(ours, ours_opt)
    assert set(a) == set(b)
    for name in a:
        assert b[name][0] == pytest.approx(a[name][0], rel=1e-12), name
        assert b[name][1] == a[name][1], name
    decayed = {n for n, (_, wd) in a.items() if wd}
    # what ViTDet decays that the MAE fine-tuning rule would not: biases, rel_pos, Detectron2's LayerNorm
    assert "backbone.net.vit.blocks.0.attn.rel_pos_h" in decayed and "backbone.net.vit.blocks.0.attn.qkv.bias" in decayed
    assert "backbone.simfp_2.1.weight" in decayed
    assert ("backbone.net.vit.pos_embed" in decayed) == (size == "h")
    assert ("backbone.net.vit.blocks.0.norm1.weight" in decayed) == (size == "h")
