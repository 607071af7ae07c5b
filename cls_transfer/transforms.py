"""The classification transforms of a config: timm's training augmentation (fine-tuning), the
official MAE's TF-style RandomResizedCrop (linear probing, util/crop.py) and its evaluation resize rule
(util/datasets.py of facebookresearch/mae)."""
from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import torch
from timm.data import create_transform
from torchvision import transforms
from torchvision.transforms import InterpolationMode
from torchvision.transforms import functional as F

from common.errors import UserError
from common.gpu_data import GpuTransform
from common.images import IMAGENET_MEAN, IMAGENET_STD

if TYPE_CHECKING:
    from PIL import Image

    from .config import ClsConfig


def official_crop_pct(input_size: int) -> float:
    """Centre-crop ratio of the official evaluation: 224/256 up to 224 px, 1.0 above (resize to the size)."""
    return 224 / 256 if input_size <= 224 else 1.0


class TFRandomResizedCrop(torch.nn.Module):
    """RandomResizedCrop as TF/TPU code draws it (the official linear-probing crop, after BYOL): one draw
    of the area fraction (uniform in scale) and of the aspect ratio (log-uniform in ratio), the box
    clipped to the image, then a uniform position. torchvision's version instead redraws up to 10
    times until the box fits and falls back to a centre crop, which favours small boxes."""

    def __init__(self, size: int | Sequence[int], scale: tuple[float, float] = (0.08, 1.0),
                 ratio: tuple[float, float] = (3 / 4, 4 / 3), interpolation: InterpolationMode = InterpolationMode.BICUBIC) -> None:
        super().__init__()
        self.size = (size, size) if isinstance(size, int) else tuple(size)
        self.scale, self.ratio, self.interpolation = scale, ratio, interpolation

    def crop_box(self, width: int, height: int) -> tuple[int, int, int, int]:
        """(top, left, height, width) of the crop box (also the gpu backend's draw)."""
        area = width * height * torch.empty(1).uniform_(*self.scale).item()
        aspect = math.exp(torch.empty(1).uniform_(math.log(self.ratio[0]), math.log(self.ratio[1])).item())
        w = min(int(round(math.sqrt(area * aspect))), width)
        h = min(int(round(math.sqrt(area / aspect))), height)
        top = int(torch.randint(0, height - h + 1, (1,)).item())
        left = int(torch.randint(0, width - w + 1, (1,)).item())
        return top, left, h, w

    def forward(self, img: Image.Image | torch.Tensor) -> Image.Image | torch.Tensor:
        width, height = F.get_image_size(img)
        top, left, h, w = self.crop_box(width, height)
        return F.resized_crop(img, top, left, h, w, list(self.size), self.interpolation)


def train_transform(cfg: ClsConfig) -> transforms.Compose:
    if cfg.mode == "linprobe":  # the official linear probe (main_linprobe.py): TF-style crop and flip only
        return transforms.Compose([
            TFRandomResizedCrop(cfg.input_size, interpolation=transforms.InterpolationMode.BICUBIC),
            transforms.RandomHorizontalFlip(), transforms.ToTensor(), transforms.Normalize(IMAGENET_MEAN, IMAGENET_STD)])
    return create_transform(cfg.input_size, is_training=True, auto_augment=cfg.auto_augment or None,
                            interpolation="bicubic", re_prob=cfg.reprob, re_mode="pixel", re_count=1,
                            mean=IMAGENET_MEAN, std=IMAGENET_STD)


def transforms_for(cfg: ClsConfig) -> tuple[Callable[[Any], Any], Callable[[Any], Any]]:
    """(train, eval) transforms of the config's data backend: PIL's, or for "gpu" the same steps split between
    the workers (the draws) and the device (common.gpu_data.GpuTransform). RandAugment is refused there: timm's
    operations and magnitudes have no tensor twin, and leaving it out would change the recipe unsaid."""
    train, evaluation = train_transform(cfg), eval_transform(cfg)
    if cfg.data_backend == "pil":
        return train, evaluation
    if cfg.auto_augment and cfg.mode != "linprobe":
        raise UserError(f"data_backend='gpu' cannot apply RandAugment (auto_augment={cfg.auto_augment!r}) on the "
                        f"device: set data_backend='pil', or auto_augment='' (timm then applies ColorJitter(0.4) instead)")
    return GpuTransform(train), GpuTransform(evaluation)


def eval_transform(cfg: ClsConfig) -> transforms.Compose:
    crop_pct = cfg.eval_crop_pct or official_crop_pct(cfg.input_size)
    return transforms.Compose([
        transforms.Resize(int(cfg.input_size / crop_pct), interpolation=transforms.InterpolationMode.BICUBIC),
        transforms.CenterCrop(cfg.input_size), transforms.ToTensor(), transforms.Normalize(IMAGENET_MEAN, IMAGENET_STD)])
