import timm
import torch
from conftest import tiny_mae_kwargs

from cls_transfer.models import build_classifier, load_pretrained, set_trainable
from common.checkpoint_files import CheckpointError
from pretrain import MaskedAutoencoder

TINY = dict(patch_size=8, depth=4, embed_dim=64, num_heads=4)


def classifier(mode, **kw):
    return build_classifier("vit_tiny_patch16", 5, mode, img_size=32, **{**TINY, **kw})


def test_finetune_names_match_timm_global_pool_vit():
    ref = timm.models.vision_transformer.VisionTransformer(img_size=32, patch_size=8, embed_dim=64, depth=4, num_heads=4,
                                                           num_classes=5, global_pool="avg", fc_norm=True)
    model = classifier("finetune")
    assert set(model.state_dict()) == set(ref.state_dict())
    model.load_state_dict(ref.state_dict())
    x = torch.randn(2, 3, 32, 32)
    torch.testing.assert_close(model.eval()(x), ref.eval()(x), atol=1e-5, rtol=0)


def test_mae_checkpoint_loads_into_each_mode(tmp_path):
    path = tmp_path / "mae.pth"
    torch.save({"model": MaskedAutoencoder(**tiny_mae_kwargs(depth=4)).state_dict()}, path)
    for mode in ("finetune", "linprobe", "partial"):
        report = load_pretrained(classifier(mode), str(path))
        assert "blocks.3.mlp.fc2.weight" in report.loaded and "decoder_embed.weight" in report.dropped
        assert ("norm.weight" in report.dropped) == (mode != "linprobe")
    wrong = tmp_path / "wrong.pth"
    torch.save({"model": MaskedAutoencoder(**tiny_mae_kwargs(depth=2)).state_dict()}, wrong)
    try:
        load_pretrained(classifier("finetune"), str(wrong))
    except CheckpointError as e:
        assert "missing keys: blocks.2" in str(e)
    else:
        raise AssertionError("a 2-block checkpoint loaded into a 4-block model")


def _train_steps(model, steps=3):
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    model.train()
    for _ in range(steps):
        loss = torch.nn.functional.cross_entropy(model(torch.randn(4, 3, 32, 32)), torch.randint(0, 5, (4,)))
        opt.zero_grad()
        loss.backward()
        opt.step()


def _changed(model, before):
    return {n for n, p in model.state_dict().items() if n in before and not torch.equal(p, before[n])}


def test_linear_probe_trains_the_head_only_through_a_non_affine_batchnorm():
    model = classifier("linprobe")
    bn = model.head[0]
    assert isinstance(bn, torch.nn.BatchNorm1d) and bn.weight is None and bn.bias is None
    trainable = set_trainable(model, "linprobe")
    assert trainable == ["head.1.weight", "head.1.bias"]
    before = {n: p.clone() for n, p in model.state_dict().items()}
    _train_steps(model)
    changed = _changed(model, before)
    assert {"head.1.weight", "head.1.bias"} <= changed
    assert changed - {"head.1.weight", "head.1.bias", "head.0.running_mean", "head.0.running_var",
                      "head.0.num_batches_tracked"} == set()


def test_partial_fine_tuning_freezes_all_but_the_last_blocks():
    model = classifier("partial")
    set_trainable(model, "partial", blocks=2)
    before = {n: p.clone() for n, p in model.state_dict().items()}
    _train_steps(model)
    changed = _changed(model, before)
    assert all(n.startswith(("blocks.2.", "blocks.3.", "fc_norm.", "head.")) for n in changed)
    assert any(n.startswith("blocks.2.") for n in changed) and "head.weight" in changed


def test_partial_mlp_half_of_the_last_block():
    model = classifier("partial")
    trainable = set_trainable(model, "partial", blocks=0.5)
    assert {n.split(".")[2] for n in trainable if n.startswith("blocks.")} == {"norm2", "mlp"}
    assert all(n.startswith(("blocks.3.", "fc_norm.", "head.")) for n in trainable)
    before = {n: p.clone() for n, p in model.state_dict().items()}
    _train_steps(model)
    assert "blocks.3.mlp.fc1.weight" in _changed(model, before)
    assert "blocks.3.attn.qkv.weight" not in _changed(model, before)
