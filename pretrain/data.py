"""Pre-training images: an ImageNet-style folder or a file list, with per-sample seeded randomness.

Every sample's augmentation and mask noise come from a seed made of (seed, epoch, index), so a run
gives the same batches whatever the number of processes or workers, and a resumed run continues
with exactly the batches it would have seen.

Fast path (docs/benchmarks.md, "Data loading"): samples travel as uint8 and are normalised on the
model's device (`common.images.normalize`, the arithmetic of ToTensor + Normalize), and a JPEG much larger than
any crop needs is decoded at a reduced DCT scale (PIL's draft mode) that still leaves every crop
at least the output's resolution. With data_backend="gpu" the workers only read the files and draw each
sample's crop from its seed; the model's device decodes and crops the batch (common/gpu_data.py).
"""
from __future__ import annotations

import math
import os
from collections.abc import Callable, Sequence
from typing import Any

import torch
from PIL import Image
from torch.utils.data import Dataset
from torchvision import transforms
from torchvision.transforms import functional as F

from common.gpu_data import GpuTransform, read_encoded
from common.images import IMAGENET_MEAN, IMAGENET_STD, IMG_EXTENSIONS, BadImageError, read_image

from .masking import sample_noise

LAYOUT_HELP = ("expected an ImageNet-style folder (ROOT/train/CLASS/IMAGE.JPEG, or ROOT/CLASS/IMAGE, "
               "or images directly in ROOT) or a text file listing one image path per line "
               "(relative paths are taken from the list's folder)")


def list_images(source: str) -> list[str]:
    """All image paths of a folder (recursively, sorted) or of a list file."""
    if not os.path.exists(source):
        raise FileNotFoundError(f"pre-training data {source!r} does not exist; {LAYOUT_HELP}")
    if os.path.isfile(source):
        base = os.path.dirname(os.path.abspath(source))
        with open(source) as f:
            paths = [_list_entry(line.strip(), base) for line in f if line.strip() and not line.startswith("#")]
    else:
        root = os.path.join(source, "train") if os.path.isdir(os.path.join(source, "train")) else source
        paths = sorted(
            os.path.join(d, f) for d, _, files in os.walk(root, followlinks=True)
            for f in files if f.lower().endswith(IMG_EXTENSIONS)
        )
    if not paths:
        raise FileNotFoundError(f"pre-training data {source!r} contains no images {IMG_EXTENSIONS}; {LAYOUT_HELP}")
    return paths


def _list_entry(line, base):
    """A list line is a path, which may hold spaces, optionally followed by an integer label
    (`PATH LABEL`, as in ImageNet's list files): the whole line is the path unless that file does
    not exist and the last word is a number."""
    path, _, last = line.rpartition(" ")
    if not path or not last.lstrip("-").isdigit() or os.path.exists(_absolute(line, base)):
        path = line
    return _absolute(path.strip(), base)


def _absolute(path, base):
    return path if os.path.isabs(path) else os.path.join(base, path)


AUGMENTATIONS = ("none", "crop_fixed", "crop_rand", "crop_rand_jitter")


class FullSizeRandomResizedCrop(transforms.RandomResizedCrop):
    """RandomResizedCrop drawn on the image's full size, also when `read_image` decoded it at a reduced
    scale (it records the full size in img.info["full_size"]): the same draws give the same view.
    At full size it is RandomResizedCrop itself (the same draws and pixels)."""

    def crop_box(self, width: int, height: int) -> tuple[int, int, int, int]:
        """(top, left, height, width) of the crop of a width x height image (also the gpu backend's draw)."""
        return self.get_params(torch.empty(1).expand(1, height, width), self.scale, self.ratio)

    def forward(self, img: Image.Image) -> Image.Image:
        width, height = img.info.get("full_size", img.size)
        top, left, h, w = self.crop_box(width, height)
        sx, sy = img.width / width, img.height / height
        return F.resized_crop(img, round(top * sy), round(left * sx), max(1, round(h * sy)), max(1, round(w * sx)),
                              self.size, self.interpolation, antialias=self.antialias)


def train_transform(input_size: int, augmentation: str = "crop_rand") -> transforms.Compose:
    """Pre-training augmentation, the four settings of Table 1e. crop_rand is the paper's default:
    RandomResizedCrop(0.2-1, bicubic) + flip; crop_fixed: a fixed-size random crop (of the image
    resized to input/0.875) + flip; crop_rand_jitter adds colour jitter; none: centre crop."""
    bicubic = transforms.InterpolationMode.BICUBIC
    if augmentation not in AUGMENTATIONS:
        raise ValueError(f"augmentation must be one of {AUGMENTATIONS}, got {augmentation!r}")
    if augmentation == "none":
        steps = [transforms.Resize(input_size, interpolation=bicubic), transforms.CenterCrop(input_size)]
    elif augmentation == "crop_fixed":
        steps = [transforms.Resize(int(input_size / 0.875), interpolation=bicubic), transforms.RandomCrop(input_size),
                 transforms.RandomHorizontalFlip()]
    else:
        steps = [FullSizeRandomResizedCrop(input_size, scale=(0.2, 1.0), interpolation=bicubic),
                 transforms.RandomHorizontalFlip()]
        if augmentation == "crop_rand_jitter":
            steps.append(transforms.ColorJitter(0.4, 0.4, 0.4))
    return transforms.Compose([*steps, transforms.PILToTensor()])  # uint8: `normalize` on the device


def min_decode_side(input_size: int, augmentation: str) -> int:
    """The shorter image side below which decoding at a reduced scale would cost any crop resolution.
    RandomResizedCrop's smallest crop (20% of the area, aspect 3:4) has a shorter side of
    sqrt(0.2 * 3/4) = 0.39 of the image's (at least); the fixed crops resize the shorter side first."""
    if augmentation in ("crop_rand", "crop_rand_jitter"):
        return math.ceil(input_size / math.sqrt(0.2 * 3 / 4))
    return int(input_size / 0.875) if augmentation == "crop_fixed" else input_size


def eval_transform(input_size: int) -> transforms.Compose:
    return transforms.Compose([
        transforms.Resize(input_size, interpolation=transforms.InterpolationMode.BICUBIC),
        transforms.CenterCrop(input_size),
        transforms.ToTensor(),
        transforms.Normalize(IMAGENET_MEAN, IMAGENET_STD),
    ])


class PretrainDataset(Dataset):
    """Yields (uint8 image, mask noise) pairs, or with data_backend="gpu" (common.gpu_data.Encoded image, mask
    noise) pairs, the same crop drawn for it; bad_images="skip" yields BadImageError instances instead of
    raising, which `collate` counts and reports (never silently dropped)."""

    def __init__(self, paths: Sequence[str], input_size: int, patch_size: int, mask_ratio: float = 0.75,
                 mask_sampling: str = "random", seed: int = 0, bad_images: str = "fail", augmentation: str = "crop_rand",
                 data_backend: str = "pil") -> None:
        if bad_images not in ("fail", "skip"):
            raise ValueError(f"bad_images must be 'fail' or 'skip', got {bad_images!r}")
        self.paths, self.seed, self.epoch = paths, seed, 0
        self.gpu = data_backend == "gpu"  # the transform's draws here, its pixel work on the device
        transform = train_transform(input_size, augmentation)
        # a GpuTransform takes the encoded bytes, the PIL transform the decoded image
        self.transform: Callable[[Any], Any] = GpuTransform(transform) if self.gpu else transform
        self.min_side = min_decode_side(input_size, augmentation)
        self.grid = (input_size // patch_size, input_size // patch_size)
        self.mask_ratio, self.mask_sampling, self.bad_images = mask_ratio, mask_sampling, bad_images

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index):
        sample_seed = hash((self.seed, self.epoch, index)) % (2**63)  # tuple-of-int hashes are stable
        try:
            img = read_encoded(self.paths[index]) if self.gpu else read_image(self.paths[index], self.min_side)
        except BadImageError as e:
            if self.bad_images == "fail":
                raise
            return e
        # torchvision draws from the global CPU generator; seeding it alone (not torch.manual_seed, which
        # also queues a lazy seeding of every GPU, ~1 ms a call) gives the same draws
        with torch.random.fork_rng(devices=[]):
            torch.default_generator.manual_seed(sample_seed)
            img = self.transform(img)
        generator = torch.Generator().manual_seed(sample_seed + 1)
        return img, sample_noise(self.mask_sampling, self.grid, self.mask_ratio, generator=generator)


