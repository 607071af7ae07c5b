"""Classification-transfer settings: one dataclass; configs/cls/*.py instantiate it."""
from collections.abc import Sequence
from dataclasses import dataclass, field

from common.config import load_config


@dataclass
class ClsConfig:
    # model
    backbone: str = "vit_base_patch16"
    backbone_overrides: dict = field(default_factory=dict)  # e.g. patch_size, depth for tiny models
    mode: str = "finetune"  # finetune | linprobe | partial | scratch
    blocks: float = 0.0  # partial: the last `blocks` blocks are trained (0.5: the MLP half of the last)
    init: str = ""  # MAE checkpoint (ours or official); empty for scratch
    drop_path: float = 0.1
    # data
    dataset: str = "imagenet"  # imagenet | inat2017 | inat2018 | inat2019 | places205 | places365
    data_root: str = ""
    input_size: int = 224
    eval_crop_pct: float | None = None  # None: the official rule, 224/256 up to 224 px and 1.0 above (util/datasets.py)
    bad_images: str = "fail"
    num_workers: int = 8
    data_backend: str = "pil"  # pil | gpu: decoded and augmented on the model's device (pretrain/config.py)
    # augmentation (fine-tuning recipe; linprobe uses RandomResizedCrop + flip only)
    auto_augment: str = "rand-m9-mstd0.5-inc1"
    reprob: float = 0.25
    mixup: float = 0.8
    cutmix: float = 1.0
    smoothing: float = 0.1
    # optimisation: lr = blr * total_batch_size / 256
    optimizer: str = "adamw"  # adamw | lars
    epochs: int = 100
    warmup_epochs: int = 5
    batch_size: int = 32  # per process
    total_batch_size: int = 1024  # reached by gradient accumulation; 0: batch_size x processes
    blr: float = 5e-4
    min_lr: float = 1e-6
    weight_decay: float = 0.05
    layer_decay: float = 0.65
    betas: tuple = (0.9, 0.999)
    momentum: float = 0.9  # LARS
    clip_grad: float = 0.0
    ema_decay: float = 0.0  # > 0 keeps an EMA of the weights (the scratch recipe) and evaluates it
    precision: str = "auto"
    seed: int = 0
    # output
    output_dir: str = "runs/cls"
    save_every: int = 10
    eval_every: int = 1  # validate every N epochs (main_finetune.py: every epoch) and after the last
    results_csv: str = ""  # "": RUN_DIR/results.csv (the output dir, or an evaluated checkpoint's folder)

    # the valid intervals (common.config.check_ranges, before training)
    ranges = {"blocks": "[0, inf)", "drop_path": "[0, 1)", "input_size": "[1, inf)", "eval_crop_pct": "(0, 1]",
              "num_workers": "[0, inf)", "reprob": "[0, 1]", "mixup": "[0, inf)", "cutmix": "[0, inf)",
              "smoothing": "[0, 1)", "epochs": "[1, inf)", "warmup_epochs": "[0, inf)", "batch_size": "[1, inf)",
              "total_batch_size": "[0, inf)", "blr": "(0, inf)", "min_lr": "[0, inf)", "weight_decay": "[0, inf)",
              "layer_decay": "(0, 1]", "betas": "[0, 1)", "momentum": "[0, 1)", "clip_grad": "[0, inf)",
              "ema_decay": "[0, 1)", "save_every": "[1, inf)", "eval_every": "[1, inf)"}
    choices = {"data_backend": ("pil", "gpu")}  # the values a setting takes (checked with the ranges)
    # what the dict fields' keys are passed to (checked when overridden)
    argument_groups = {"backbone_overrides": lambda: _classifier_class()}


def _classifier_class():
    from .models import ViTClassifier

    return ViTClassifier


def load_cls_config(path: str, overrides: Sequence[str] = ()) -> ClsConfig:
    return load_config(path, ClsConfig, overrides)
