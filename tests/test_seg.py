"""The MAE ViT in MMSegmentation: registry modules, layer decay, checkpoints, and UperNet trained
for real on a generated ADE20K-layout set."""
import csv
import os
import subprocess
import sys

import pytest
import torch
from mmengine.config import Config
from mmseg.registry import MODELS, OPTIM_WRAPPER_CONSTRUCTORS

import seg  # noqa: F401  (registers the modules)
from seg.distributed import use_plain_batchnorm
from conftest import tiny_mae_kwargs
from pretrain import MaskedAutoencoder
from reproduction.toy_data import CLASSES, write_ade20k

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

BACKBONE = dict(type="MAEViT", img_size=64, patch_size=8, embed_dim=64, depth=4, num_heads=4, out_indices=(0, 1, 2, 3))


def test_backbone_and_neck_give_strides_4_to_32():
    backbone = MODELS.build(dict(BACKBONE, patch_size=16))  # a 4x4 grid at 64 px, 4x6 for 64x96 inputs
    neck = MODELS.build(dict(type="MultiScaleNeck", embed_dim=64, norm_cfg=dict(type="BN")))
    feats = backbone(torch.randn(2, 3, 64, 96))
    assert [f.shape for f in feats] == [(2, 64, 4, 6)] * 4
    outs = neck(feats)
    assert [o.shape[-2:] for o in outs] == [(16, 24), (8, 12), (4, 6), (2, 3)]  # strides 4, 8, 16, 32
    assert all(o.shape[1] == 64 for o in outs)


def test_patch_14_pads_to_whole_patches():
    backbone = MODELS.build(dict(BACKBONE, patch_size=14, img_size=70))
    assert backbone(torch.randn(1, 3, 64, 64))[0].shape == (1, 64, 5, 5)


def test_relative_position_bias_starts_at_zero_and_checkpoint_is_used_whole(tmp_path):
    path = tmp_path / "mae.pth"
    mae = MaskedAutoencoder(**tiny_mae_kwargs(depth=4))  # 32 px pre-training: pos_embed is resampled
    torch.save({"model": mae.state_dict()}, path)
    backbone = MODELS.build(dict(BACKBONE, init_checkpoint=str(path)))
    tables = [b.attn.relative_position_bias_table for b in backbone.vit.blocks]
    assert all(t.abs().sum() == 0 for t in tables)
    backbone.init_weights()
    encoder_keys = {k for k in mae.state_dict() if not k.startswith(("decoder", "mask_token", "norm."))}
    loaded = {k for k, v in backbone.vit.state_dict().items() if "relative_position" not in k}
    assert loaded == encoder_keys
    torch.testing.assert_close(backbone.vit.blocks[3].mlp.fc2.weight, mae.blocks[3].mlp.fc2.weight)
    assert backbone.vit.pos_embed.shape == (1, 1 + 8 * 8, 64)


def test_layer_decay_constructor_follows_the_shared_rule():
    model = torch.nn.ModuleDict({"backbone": MODELS.build(BACKBONE),
                                 "decode_head": torch.nn.Conv2d(64, 5, 1)})
    constructor = OPTIM_WRAPPER_CONSTRUCTORS.build(dict(
        type="LayerDecayOptimWrapperConstructor",
        optim_wrapper_cfg=dict(type="OptimWrapper", optimizer=dict(type="AdamW", lr=1e-4, weight_decay=0.05)),
        paramwise_cfg=dict(layer_decay=0.5)))
    optimizer = constructor(model).optimizer
    lr = {n: g["lr"] for g in optimizer.param_groups for n in g["param_names"]}
    wd = {n: g["weight_decay"] for g in optimizer.param_groups for n in g["param_names"]}
    assert lr["decode_head.weight"] == pytest.approx(1e-4)
    assert lr["backbone.vit.blocks.3.attn.qkv.weight"] == pytest.approx(1e-4 * 0.5)
    assert lr["backbone.vit.blocks.0.attn.qkv.weight"] == pytest.approx(1e-4 * 0.5**4)
    assert lr["backbone.vit.pos_embed"] == pytest.approx(1e-4 * 0.5**5)
    # the default decay rule "1d", as mmseg runs (tests/test_parity_seg.py): only 1-D parameters are exempt
    assert wd["backbone.vit.pos_embed"] == 0.05 and wd["backbone.vit.blocks.0.attn.relative_position_bias_table"] == 0.05
    assert wd["backbone.vit.blocks.0.attn.qkv.weight"] == 0.05 and wd["decode_head.bias"] == 0
    assert wd["backbone.vit.blocks.0.norm1.weight"] == 0


def test_configs_build_the_paper_models():
    for name, dim, indices, decay in (("b", 768, (3, 5, 7, 11), 0.65), ("l", 1024, (7, 11, 15, 23), 0.75),
                                      ("h", 1280, (7, 15, 23, 31), 0.75)):
        cfg = Config.fromfile(os.path.join(ROOT, f"configs/seg/upernet_vit_{name}.py"))
        assert cfg.model.backbone.embed_dim == dim and tuple(cfg.model.backbone.out_indices) == indices
        assert cfg.model.decode_head.pool_scales == (1, 2, 3, 6) and cfg.model.auxiliary_head.loss_decode.loss_weight == 0.4
        assert cfg.optim_wrapper.paramwise_cfg.layer_decay == decay and cfg.train_cfg.max_iters == 126312
        assert cfg.optim_wrapper.paramwise_cfg.decay_rule == "1d"
        assert cfg.model.test_cfg.stride == (341, 341) and cfg.train_dataloader.batch_size * 8 == 16


def run_seg(*args):
    result = subprocess.run([sys.executable, os.path.join(ROOT, "tools/train_seg.py"), "--cfg", "seg/upernet_vit_tiny.py",
                             *args, "model.backbone.depth=4", "model.backbone.out_indices=(0,1,2,3)"],
                            capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout + result.stderr


def rows(path):
    with open(path) as f:
        return list(csv.DictReader(f))


@pytest.mark.slow
def test_upernet_trains_resumes_and_eval_only_reproduces(tiny_mae_checkpoint, tmp_path):
    # the colour-coded classification classes: a learning check that a short CPU run passes clearly
    data = write_ade20k(str(tmp_path / "ade"), num_train=60, num_val=20, size=64, seed=2, categories=CLASSES)
    common = ["--data-root", data, "--results-csv", str(tmp_path / "seg.csv")]
    run_seg(*common, "--init", tiny_mae_checkpoint, "--work-dir", str(tmp_path / "before"),
            "train_cfg.max_iters=0", "train_cfg.val_interval=1")
    run_seg(*common, "--init", tiny_mae_checkpoint, "--work-dir", str(tmp_path / "run"),
            "train_cfg.max_iters=120", "default_hooks.checkpoint.interval=60")
    os.remove(tmp_path / "run" / "iter_120.pth")  # as if the run had been killed after iteration 60
    with open(tmp_path / "run" / "last_checkpoint", "w") as f:
        f.write(str(tmp_path / "run" / "iter_60.pth"))
    log = run_seg(*common, "--work-dir", str(tmp_path / "run"), "--resume", "auto", "train_cfg.max_iters=120",
                  "default_hooks.checkpoint.interval=60")
    assert "resumed epoch: 0, iter: 60" in log
    run_seg(*common, "--work-dir", str(tmp_path / "run"), "--eval-only", str(tmp_path / "run" / "iter_120.pth"))
    before, trained, resumed, evaluated = rows(tmp_path / "seg.csv")
    assert before["iteration"] == "0" and trained["iteration"] == "120" and resumed["iteration"] == "120"
    assert float(trained["mIoU"]) > float(before["mIoU"]) + 15, (before["mIoU"], trained["mIoU"])
    assert evaluated["mIoU"] == resumed["mIoU"] and evaluated["aAcc"] == resumed["aAcc"]
    assert evaluated["iteration"] == "120" and evaluated["checkpoint"].endswith("iter_120.pth")


def test_neck_uses_syncbn_in_distributed_runs_and_bn_in_one_process():
    cfg = Config.fromfile(os.path.join(ROOT, "configs/seg/upernet_vit_b.py"))
    neck = MODELS.build(cfg.model.neck)  # as a distributed run builds it
    norms = [m for m in neck.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    assert len(norms) == 1 and type(norms[0]) is torch.nn.SyncBatchNorm
    use_plain_batchnorm(cfg.model)  # what tools/train_seg.py does in a single process
    neck = MODELS.build(cfg.model.neck)
    assert [type(m) for m in neck.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)] == [torch.nn.BatchNorm2d]
    assert cfg.model.decode_head.norm_cfg.type == "BN"


@pytest.mark.parametrize("max_iters", [0, 20, 200, 126312])
def test_run_length_is_one_setting_the_schedule_follows(tmp_path, max_iters):
    """train_cfg.max_iters=N alone: the poly decay reaches 0 at iteration N (the runner fills in its end);
    a run within the 30 warm-up iterations never reaches it."""
    from mmengine.runner import Runner

    data = write_ade20k(str(tmp_path / "ade"), num_train=4, num_val=2, size=64, seed=2)
    cfg = Config.fromfile(os.path.join(ROOT, "configs/seg/upernet_vit_tiny.py"))
    cfg.merge_from_dict({"train_cfg.max_iters": max_iters})
    for loader in ("train_dataloader", "val_dataloader", "test_dataloader"):
        cfg[loader]["dataset"]["data_root"] = data
    cfg.work_dir, cfg.launcher = str(tmp_path / "run"), "none"
    use_plain_batchnorm(cfg.model)
    runner = Runner.from_cfg(cfg)
    runner._train_loop = runner.build_train_loop(runner._train_loop)  # the order of Runner.train()
    runner.optim_wrapper = runner.build_optim_wrapper(runner.optim_wrapper)
    warmup, poly = runner.build_param_scheduler(runner.param_schedulers)
    assert (warmup.end, poly.begin, poly.end) == (30, 30, max(max_iters, 31))
    if max_iters == 200:  # linear from the peak after the warm-up to 0 at the last iteration
        group = runner.optim_wrapper.optimizer.param_groups[-1]
        lrs = []
        for _ in range(max_iters):  # as ParamSchedulerHook steps them after every iteration
            lrs.append(group["lr"])
            warmup.step()
            poly.step()
        assert lrs[0] == pytest.approx(group["initial_lr"] * 1e-6)
        assert lrs[115] == pytest.approx(group["initial_lr"] / 2, rel=0.02)
        assert lrs[-1] == pytest.approx(0, abs=1e-12) and lrs[-2] > 0
