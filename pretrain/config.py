"""Pre-training settings: one dataclass, config files that instantiate it, key=value overrides."""
import ast
import dataclasses
import inspect
import os
import runpy
from dataclasses import dataclass, field

from backbones.errors import UserError, unknown_key_message


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
    # off on CPUs (minutes of compiling, no gain measured); or True / False
    compile: object = "auto"
    seed: int = 0
    # output
    output_dir: str = "runs/pretrain"
    save_every: int = 20  # epochs between numbered checkpoints (checkpoint-last.pth is every epoch)
    vis_every: int = 20  # epochs between reconstruction figures; 0 turns them off
    vis_images: int = 4

    # what the dict fields' keys are passed to (checked when overridden)
    argument_groups = {"model_overrides": lambda: _mae_class()}


def _mae_class():
    from .mae import MaskedAutoencoder

    return MaskedAutoencoder


def load_config(path, overrides=(), config_class=None):
    """Runs a config file (it must define `config = <config_class>(...)`, PretrainConfig by default)
    and applies key=value overrides, each parsed as a Python literal when it is one."""
    config_class = config_class or PretrainConfig
    if not os.path.isfile(path):
        raise FileNotFoundError(f"config file not found: {path}")
    cfg = runpy.run_path(path).get("config")
    if not isinstance(cfg, config_class):
        raise UserError(f"{path} must define `config = {config_class.__name__}(...)`")
    return apply_overrides(cfg, overrides)


def apply_overrides(cfg, overrides):
    names = {f.name: f for f in dataclasses.fields(cfg)}
    changes = {}
    for item in overrides:
        key, sep, raw = item.partition("=")
        if not sep:
            raise UserError(f"override {item!r} is not key=value")
        group, dot, sub = key.partition(".")
        if dot and isinstance(getattr(cfg, group, None), dict):  # e.g. model_overrides.depth=6
            _check_arguments(cfg, group, [sub])
            changes.setdefault(group, dict(getattr(cfg, group)))[sub] = _literal(raw)
            continue
        if key not in names:
            raise UserError(unknown_key_message("config key", key, names))
        value = _literal(raw)
        default = getattr(cfg, key)
        if isinstance(default, float) and isinstance(value, int):
            value = float(value)
        if isinstance(default, tuple) and isinstance(value, list):
            value = tuple(value)
        if default is not None and not isinstance(value, type(default)):
            raise UserError(f"config key {key!r} expects {type(default).__name__}, got {raw!r}")
        if isinstance(value, dict):  # e.g. model_overrides={'depth': 6}
            _check_arguments(cfg, key, value)
        changes[key] = value
    return dataclasses.replace(cfg, **changes)


def _check_arguments(cfg, group, keys):
    arguments = _arguments(cfg.argument_groups[group]())
    for key in keys:
        if key not in arguments:
            raise UserError(unknown_key_message(f"{group} argument", key, arguments))


def _arguments(fn):
    """The keyword arguments fn takes, its classes' bases' included where it passes **kwargs on."""
    names = set()
    for cls in (fn.__mro__ if isinstance(fn, type) else (fn,)):
        init = cls.__init__ if isinstance(cls, type) else cls
        if init is object.__init__:
            continue
        params = inspect.signature(init).parameters
        names |= {n for n, p in params.items() if n != "self" and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
        if not any(p.kind is p.VAR_KEYWORD for p in params.values()):
            break
    return names


def _literal(raw):
    try:
        return ast.literal_eval(raw)
    except (ValueError, SyntaxError):
        return raw


def derive(base_file, **changes):
    """A config file's neighbour with some fields changed (configs inherit as plain Python)."""
    return dataclasses.replace(runpy.run_path(base_file)["config"], **changes)


def build_model(cfg):
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
