"""Pre-training settings: one dataclass; config files instantiate it (common.config loads them and
applies overrides); `build_model` makes the model a config describes (the config knows the model, not
the other way round)."""
import dataclasses
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .mae import MaskedAutoencoder


@dataclass
class PretrainConfig:
    # model (pretrain.build_mae name; model_overrides go to MaskedAutoencoder, e.g. decoder_depth)
    model: str = "mae_vit_base_patch16"
    model_overrides: dict = field(default_factory=dict)
    input_size: int = 224
    mask_ratio: float = 0.75
    target: str = "norm_pixel"  # pixel | norm_pixel | pca | dvae_token (the paper's main results use norm_pixel)
    tokenizer: str = ""  # dvae_token: tools/train_dvae.py's checkpoint or DALL-E's encoder.pkl
    mask_sampling: str = "random"  # random | block | grid
    pca_fit_images: int = 2048  # images used to fit the PCA basis when target == "pca"
    # data
    data: str = ""  # ImageNet-style folder or a file list
    augmentation: str = "crop_rand"  # none | crop_fixed | crop_rand | crop_rand_jitter (Table 1e)
    bad_images: str = "fail"  # fail | skip (skipped images are counted and logged)
    num_workers: int = 8
    # "pil": workers decode and augment (PIL); "gpu": workers read the bytes and draw the augmentation, the
    # model's device decodes and augments the batch (common/gpu_data.py; README, "GPU data path")
    data_backend: str = "pil"
    # optimisation (paper Table 8): lr = blr * total_batch_size / 256
    epochs: int = 800
    warmup_epochs: int = 40
    batch_size: int = 64  # per process
    total_batch_size: int = 0  # 0: batch_size * world size; otherwise reached by gradient accumulation
    blr: float = 1.5e-4
    min_lr: float = 0.0
    weight_decay: float = 0.05
    betas: tuple = (0.9, 0.95)
    clip_grad: float = 0.0  # 0: no clipping (the paper)
    precision: str = "auto"  # auto (bf16 where supported) | bf16 | fp16 (GPU, GradScaler) | fp32
    # torch.compile of the training forward: "auto" = on GPUs (1.39x on an H200, same loss; docs/benchmarks.md),
    # off on CPUs (76 s of compiling for a 2% gain on ViT-B here); or True / False
    compile: object = "auto"
    seed: int = 0
    # output
    output_dir: str = "runs/pretrain"
    save_every: int = 20  # epochs between numbered checkpoints (checkpoint-last.pth is every epoch)
    vis_every: int = 20  # epochs between reconstruction figures; 0 turns them off
    vis_images: int = 4

    # the valid intervals (common.config.check_ranges, before training); mask_ratio and input_size are also
    # checked against the model's patch grid once it is built
    ranges = {"input_size": "[1, inf)", "mask_ratio": "(0, 1)", "pca_fit_images": "[1, inf)", "num_workers": "[0, inf)",
              "epochs": "[1, inf)", "warmup_epochs": "[0, inf)", "batch_size": "[1, inf)", "total_batch_size": "[0, inf)",
              "blr": "(0, inf)", "min_lr": "[0, inf)", "weight_decay": "[0, inf)", "betas": "[0, 1)",
              "clip_grad": "[0, inf)", "save_every": "[1, inf)", "vis_every": "[0, inf)", "vis_images": "[1, inf)"}
    choices = {"data_backend": ("pil", "gpu")}  # the values a setting takes (checked with the ranges)
    # what the dict fields' keys are passed to (checked when overridden)
    argument_groups = {"model_overrides": lambda: _mae_class()}


def _mae_class() -> "type[MaskedAutoencoder]":
    from .mae import MaskedAutoencoder

    return MaskedAutoencoder


def build_model(cfg: PretrainConfig | dict) -> "MaskedAutoencoder":
    """The MaskedAutoencoder a config describes (a PretrainConfig or its dict from a checkpoint)."""
    from .mae import build_mae

    cfg = cfg if isinstance(cfg, dict) else dataclasses.asdict(cfg)
    tokenizer = None
    if cfg["target"] == "dvae_token":
        if not cfg.get("tokenizer"):
            raise ValueError("target='dvae_token' needs tokenizer=PATH (tools/train_dvae.py's checkpoint or DALL-E's encoder.pkl)")
        from .tokenizer import load_tokenizer

        tokenizer = load_tokenizer(cfg["tokenizer"])
    return build_mae(cfg["model"], img_size=cfg["input_size"], target=cfg["target"],
                     mask_sampling=cfg["mask_sampling"], tokenizer=tokenizer, **cfg["model_overrides"])
