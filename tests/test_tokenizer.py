"""The dVAE-token target (Table 7): tokenizers in DALL-E's architecture, the MAE that predicts their
token ids, and tools/train_dvae.py."""
import csv
import subprocess
import sys

import pytest
import torch
import torch.nn.functional as F
from conftest import ROOT, tiny_mae_kwargs

from common.checkpoint_files import CheckpointError, save_file
from pretrain.mae import MaskedAutoencoder
from pretrain.tokenizer import DiscreteVAE, Tokenizer, load_tokenizer, map_pixels


def small_dvae():
    return DiscreteVAE(n_hid=64, n_blk_per_group=1, vocab_size=512, n_init=64)


def test_tokenizer_gives_one_token_per_patch_from_the_encoder_argmax():
    dvae = small_dvae()
    tokenizer = Tokenizer(dvae.encoder)
    imgs = torch.randn(2, 3, 32, 32)
    tokens = tokenizer(imgs, (4, 4))
    assert tokens.shape == (2, 16) and tokens.dtype == torch.int64
    # the same pixels the encoder sees: de-normalised, resized to grid x 8, DALL-E's mapping
    pixels = (imgs * tokenizer.std + tokenizer.mean).clamp(0, 1)  # 32 px = 4 x 8: no resize
    expected = dvae.encoder(map_pixels(pixels)).argmax(1).flatten(1)
    assert torch.equal(tokens, expected)
    assert tokenizer(F.interpolate(imgs, size=64), (4, 4)).shape == (2, 16)  # resized to the patch grid


def test_token_target_trains_the_decoder_with_cross_entropy_and_leaves_the_tokenizer_frozen():
    tokenizer = Tokenizer(small_dvae().encoder)
    model = MaskedAutoencoder(**tiny_mae_kwargs(), target="dvae_token", tokenizer=tokenizer)
    assert model.decoder_pred.out_features == 512
    imgs = torch.randn(2, 3, 32, 32)
    loss, pred, mask = model(imgs)
    expected = F.cross_entropy(pred.transpose(1, 2), tokenizer(imgs, (4, 4)), reduction="none")
    assert torch.allclose(loss, (expected * mask).sum() / mask.sum(), atol=1e-6)
    assert loss.item() == pytest.approx(torch.log(torch.tensor(512.0)).item(), rel=0.2)  # near uniform at init
    before = {k: v.clone() for k, v in model.tokenizer.state_dict().items()}
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    for _ in range(5):
        opt.zero_grad()
        model(imgs)[0].backward()
        opt.step()
    assert all(torch.equal(before[k], v) for k, v in model.tokenizer.state_dict().items())
    model.train()
    assert not model.tokenizer.training
    with pytest.raises(ValueError, match="needs a tokenizer"):
        MaskedAutoencoder(**tiny_mae_kwargs(), target="dvae_token")


def test_load_tokenizer_reads_train_dvae_checkpoints_state_dicts_and_pickled_encoders(tmp_path):
    dvae = small_dvae()
    imgs = torch.randn(2, 3, 32, 32)
    expected = Tokenizer(dvae.encoder)(imgs, (4, 4))
    save_file({"model": dvae.state_dict(), "arch": dvae.arch, "epoch": 1}, str(tmp_path / "dvae.pth"))
    assert torch.equal(load_tokenizer(str(tmp_path / "dvae.pth"))(imgs, (4, 4)), expected)

    from dall_e.encoder import Encoder

    default = Encoder(n_hid=64, n_blk_per_group=1, vocab_size=512)
    torch.save(default, tmp_path / "encoder.pkl")  # how DALL-E's encoder.pkl was written: the whole module
    want = Tokenizer(default)(imgs, (4, 4))
    assert torch.equal(load_tokenizer(str(tmp_path / "encoder.pkl"))(imgs, (4, 4)), want)
    # the allow-list was scoped to that load: a plain weights_only load still refuses the module
    with pytest.raises(Exception, match="Weights only load failed"):
        torch.load(tmp_path / "encoder.pkl", weights_only=True)

    full = Encoder()  # DALL-E's sizes (8192 tokens) from a bare state dict
    torch.save(full.state_dict(), tmp_path / "encoder_state.pth")
    assert load_tokenizer(str(tmp_path / "encoder_state.pth")).vocab_size == 8192

    torch.save({"model": {"blocks.0.weight": torch.zeros(1)}}, tmp_path / "other.pth")
    with pytest.raises(CheckpointError, match="other.pth: not a dVAE tokenizer"):
        load_tokenizer(str(tmp_path / "other.pth"))
    torch.save({"blocks.input.w": torch.zeros(1)}, tmp_path / "wrong.pth")
    with pytest.raises(CheckpointError, match="wrong.pth: the weights do not fit"):
        load_tokenizer(str(tmp_path / "wrong.pth"))


@pytest.mark.slow
def test_train_dvae_cli_trains_resumes_and_feeds_token_pretraining(tmp_path):
    from reproduction.toy_data import write_image_folder

    data = write_image_folder(str(tmp_path / "images"), 64, size=64, seed=3)
    out = tmp_path / "dvae"

    def train(epochs):
        result = subprocess.run([sys.executable, "tools/train_dvae.py", "--data", data, "--output-dir", str(out),
                                 "--epochs", str(epochs), "--batch-size", "32", "--resume"],
                                capture_output=True, text=True, cwd=ROOT)
        assert result.returncode == 0, result.stderr[-2000:]
        return result.stdout

    train(1)
    second = train(2)
    assert "resumed from" in second and "epoch 1/2" not in second
    with open(out / "log.csv") as f:
        rows = list(csv.DictReader(f))
    assert [r["epoch"] for r in rows] == ["1", "2"] and all(int(r["codes_used"]) >= 1 for r in rows)
    assert (out / "reconstructions.png").stat().st_size > 1000

    result = subprocess.run([sys.executable, "tools/pretrain.py", "--cfg", "pretrain/mae_vit_tiny_cpu.py", "--data", data,
                             "--output-dir", str(tmp_path / "mae"), "target=dvae_token", f"tokenizer={out / 'dvae.pth'}",
                             "epochs=1", "warmup_epochs=1", "batch_size=16", "model_overrides.depth=2", "num_workers=0"],
                            capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0, result.stderr[-2000:]
    ckpt = torch.load(tmp_path / "mae" / "checkpoint-last.pth", weights_only=True)
    assert any(k.startswith("tokenizer.") for k in ckpt["model"])
    # the transfer side drops the tokenizer with the decoder
    from cls_transfer.models import build_classifier, load_pretrained

    model = build_classifier("vit_tiny_patch8", 5, img_size=64, depth=2)
    report = load_pretrained(model, str(tmp_path / "mae" / "checkpoint-last.pth"))
    assert any(k.startswith("tokenizer.") for k in report.dropped)
