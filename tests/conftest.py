import os
import subprocess
import sys

# Tiny test models gain nothing from a second intra-op thread and lose a lot to spinning threads
# when the cores are shared: one thread here and in the tools the tests start (their environment).
os.environ.setdefault("OMP_NUM_THREADS", "1")

import pytest  # noqa: E402
import torch  # noqa: E402

torch.set_num_threads(1)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# the tools the tests start import this checkout's packages, whichever checkout the environment's
# editable install points to (pytest's pythonpath does the same for the tests themselves)
os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, (ROOT, os.environ.get("PYTHONPATH"))))


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


def tiny_mae_kwargs(**overrides):
    """A MAE small enough for CPU tests: 32 px images, 8 px patches (a 4x4 grid)."""
    kwargs = dict(img_size=32, patch_size=8, embed_dim=64, depth=2, num_heads=4,
                  decoder_embed_dim=32, decoder_depth=2, decoder_num_heads=4)
    kwargs.update(overrides)
    return kwargs


# tools/pretrain.py overrides of configs/pretrain/mae_vit_tiny_cpu.py for runs of a few seconds: 32 px
# inputs, 8 px patches, a 2-block encoder, a checkpoint every epoch
TINY_PRETRAIN_ARGS = ["input_size=32", "batch_size=4", "num_workers=0", "vis_every=0", "save_every=1", "precision='fp32'",
                      "warmup_epochs=1", "model_overrides.patch_size=8", "model_overrides.depth=2",
                      "model_overrides.embed_dim=64", "model_overrides.num_heads=4", "model_overrides.decoder_embed_dim=32",
                      "model_overrides.decoder_depth=1", "model_overrides.decoder_num_heads=4"]


# The encoder every transfer test uses: ViT-Tiny width, 4 blocks, 8 px patches.
TINY_ENCODER = dict(patch_size=8, depth=4)


@pytest.fixture(scope="session")
def tiny_mae_checkpoint(tmp_path_factory):
    """A tiny MAE pre-trained for 20 epochs on 512 generated 64 px scenes (about 30 s here)."""
    from pretrain.config import PretrainConfig
    from pretrain.engine import Trainer
    from reproduction.toy_data import write_image_folder

    out = tmp_path_factory.mktemp("tiny_mae")
    write_image_folder(str(out / "images"), num_images=512, size=64, seed=5)
    cfg = PretrainConfig(model="mae_vit_tiny_patch16", data=str(out / "images"), output_dir=str(out / "run"),
                         model_overrides=dict(**TINY_ENCODER, decoder_embed_dim=64, decoder_depth=1, decoder_num_heads=4),
                         input_size=64, epochs=20, warmup_epochs=2, batch_size=32, blr=1.5e-3, num_workers=0,
                         vis_every=0, save_every=100)
    Trainer(cfg).train()
    return str(out / "run" / "checkpoint-last.pth")


def images_with_one_broken_file(data):
    """8 generated 40 px scenes under data/train/CLASS/ and one file that is not an image; -> its path."""
    from reproduction.toy_data import write_image_folder

    write_image_folder(str(data), num_images=8, size=40, seed=2)
    broken = data / "train" / "circle" / "broken.png"
    broken.parent.mkdir(parents=True, exist_ok=True)
    broken.write_bytes(b"not a png")
    return broken


def user_error(tool, *args):
    """Runs tools/<tool> and checks that it stopped as a user's mistake must: exit code 2 and ONE
    line `error: ...` on stderr, no traceback. Returns that line."""
    result = subprocess.run([sys.executable, os.path.join(ROOT, "tools", tool), *map(str, args)],
                            capture_output=True, text=True, cwd=ROOT)
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2, (result.returncode, result.stderr[-3000:])
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    assert lines and lines[-1].startswith("error: "), result.stderr[-3000:]
    assert sum(line.startswith("error: ") for line in lines) == 1 and not lines[-1].endswith(":"), lines
    return lines[-1]
