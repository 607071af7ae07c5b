"""torch.compile of the pre-training forward: on by default on GPUs only (measured 1.39x on an H200
with the same loss, docs/benchmarks.md); a bad setting is refused."""
import pytest
import torch

from pretrain.config import PretrainConfig
from pretrain.engine import Trainer
from reproduction.toy_data import write_image_folder

TINY = dict(model="mae_vit_tiny_patch16", input_size=32, epochs=1, warmup_epochs=0, batch_size=4, num_workers=0,
            model_overrides=dict(patch_size=8, depth=1, embed_dim=32, num_heads=2, decoder_embed_dim=32,
                                 decoder_depth=1, decoder_num_heads=2), vis_every=0, precision="fp32")


def test_compile_is_auto_off_on_the_cpu_and_a_bad_value_is_refused(tmp_path):
    write_image_folder(str(tmp_path / "img"), num_images=8, size=40, seed=1)
    cfg = dict(TINY, data=str(tmp_path / "img"), output_dir=str(tmp_path / "run"))
    trainer = Trainer(PretrainConfig(**cfg))
    assert trainer.train_forward is trainer.model  # eager on the CPU: no minutes of inductor compiling
    forced = Trainer(PretrainConfig(**cfg, compile=True))
    assert isinstance(forced.train_forward, torch._dynamo.eval_frame.OptimizedModule)
    assert forced.train_forward._orig_mod is forced.model  # checkpoints keep the plain module's names
    with pytest.raises(ValueError, match="compile must be"):
        Trainer(PretrainConfig(**cfg, compile="yes"))
