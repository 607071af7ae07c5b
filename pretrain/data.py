"""Pre-training images: an ImageNet-style folder or a file list, with per-sample seeded randomness.

Every sample's augmentation and mask noise come from a seed made of (seed, epoch, index), so a run
gives the same batches whatever the number of processes or workers, and a resumed run continues
with exactly the batches it would have seen.

Fast path (docs/benchmarks.md, "Data loading"): samples travel as uint8 and are normalised on the
model's device (`normalize`, the arithmetic of ToTensor + Normalize), and a JPEG much larger than
any crop needs is decoded at a reduced DCT scale (PIL's draft mode) that still leaves every crop
at least the output's resolution.
"""
import math
import os

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset, default_collate
from torchvision import transforms
from torchvision.transforms import functional as F

from backbones.errors import UserError

from .masking import sample_noise

IMG_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
LAYOUT_HELP = ("expected an ImageNet-style folder (ROOT/train/CLASS/IMAGE.JPEG, or ROOT/CLASS/IMAGE, "
               "or images directly in ROOT) or a text file listing one image path per line "
               "(relative paths are taken from the list's folder)")


class BadImageError(UserError, RuntimeError):
    """An image file that cannot be decoded; the message names it."""


def list_images(source):
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

    def forward(self, img):
        width, height = img.info.get("full_size", img.size)
        top, left, h, w = self.get_params(torch.empty(1).expand(1, height, width), self.scale, self.ratio)
        sx, sy = img.width / width, img.height / height
        return F.resized_crop(img, round(top * sy), round(left * sx), max(1, round(h * sy)), max(1, round(w * sx)),
                              self.size, self.interpolation, antialias=self.antialias)


def train_transform(input_size, augmentation="crop_rand"):
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


def normalize(imgs):
    """uint8 (N, 3, H, W) -> float, normalised with the ImageNet statistics: the same arithmetic as
    ToTensor + Normalize (bit-identical), done where the batch lands (on a GPU: off the loader's CPUs)."""
    mean = torch.tensor(IMAGENET_MEAN, device=imgs.device).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD, device=imgs.device).view(1, 3, 1, 1)
    return imgs.float().div(255).sub(mean).div(std)


def min_decode_side(input_size, augmentation):
    """The shorter image side below which decoding at a reduced scale would cost any crop resolution.
    RandomResizedCrop's smallest crop (20% of the area, aspect 3:4) has a shorter side of
    sqrt(0.2 * 3/4) = 0.39 of the image's (at least); the fixed crops resize the shorter side first."""
    if augmentation in ("crop_rand", "crop_rand_jitter"):
        return math.ceil(input_size / math.sqrt(0.2 * 3 / 4))
    return int(input_size / 0.875) if augmentation == "crop_fixed" else input_size


def eval_transform(input_size):
    return transforms.Compose([
        transforms.Resize(input_size, interpolation=transforms.InterpolationMode.BICUBIC),
        transforms.CenterCrop(input_size),
        transforms.ToTensor(),
        transforms.Normalize(IMAGENET_MEAN, IMAGENET_STD),
    ])


def read_image(path, min_side=None):
    """An RGB image; with min_side, a JPEG is decoded at the smallest scale of 1/2, 1/4, 1/8 whose
    shorter side keeps min_side pixels (DCT-domain downscaling: several times faster for large photos)."""
    try:
        with Image.open(path) as img:
            reduction = 1
            while min_side and reduction < 8 and min(img.size) / (2 * reduction) >= min_side:
                reduction *= 2
            if reduction > 1:
                full_size = img.size
                img.draft("RGB", (img.width // reduction, img.height // reduction))
                img.info["full_size"] = full_size  # for FullSizeRandomResizedCrop (conversions keep info)
            return to_rgb(img)
    except (OSError, ValueError, Image.DecompressionBombError) as e:
        raise BadImageError(f"cannot read image {path}: {e}") from e


def to_rgb(img):
    """8-bit RGB from any PIL mode. PIL's own convert("RGB") clips 16-bit and 32-bit values to 255
    (a 16-bit photo turns white): those are scaled to 8 bits instead (16-bit by 1/257, floats from
    [0, 1]); transparent pixels (RGBA, LA, palettes with transparency) are composited on white."""
    if img.mode in ("I", "I;16", "I;16B", "I;16L", "I;16N", "F"):
        values = np.asarray(img, dtype=np.float64)
        if img.mode == "F" and values.max(initial=0.0) <= 1.0:
            values = values * 255.0
        elif img.mode.startswith("I;16") or (img.mode == "I" and values.max(initial=0.0) > 255):
            values = values / 257.0  # 16-bit range ("I" holds 16-bit PNG/TIFF data with some Pillow versions)
        return Image.fromarray(np.clip(np.rint(values), 0, 255).astype(np.uint8), "L").convert("RGB")
    if img.mode == "P" and "transparency" in img.info:
        img = img.convert("RGBA")
    if img.mode in ("RGBA", "LA", "PA"):
        img = img.convert("RGBA")
        background = Image.new("RGBA", img.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, img).convert("RGB")
    return img.convert("RGB")


class PretrainDataset(Dataset):
    """Yields (uint8 image, mask noise) pairs; bad_images="skip" yields BadImageError instances instead of
    raising, which `collate` counts and reports (never silently dropped)."""

    def __init__(self, paths, input_size, patch_size, mask_ratio=0.75, mask_sampling="random", seed=0,
                 bad_images="fail", augmentation="crop_rand"):
        if bad_images not in ("fail", "skip"):
            raise ValueError(f"bad_images must be 'fail' or 'skip', got {bad_images!r}")
        self.paths, self.seed, self.epoch = paths, seed, 0
        self.transform = train_transform(input_size, augmentation)
        self.min_side = min_decode_side(input_size, augmentation)
        self.grid = (input_size // patch_size, input_size // patch_size)
        self.mask_ratio, self.mask_sampling, self.bad_images = mask_ratio, mask_sampling, bad_images

    def set_epoch(self, epoch):
        self.epoch = epoch

    def __len__(self):
        return len(self.paths)

    def __getitem__(self, index):
        sample_seed = hash((self.seed, self.epoch, index)) % (2**63)  # tuple-of-int hashes are stable
        try:
            img = read_image(self.paths[index], self.min_side)
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


def collate(batch):
    """Batches (input, target) pairs, leaving out the BadImageError items that the "skip" policy
    yields: -> (inputs, targets, [messages of the skipped images])."""
    bad = [str(item) for item in batch if isinstance(item, BadImageError)]
    good = [item for item in batch if not isinstance(item, BadImageError)]
    if not good:
        return None, None, bad
    inputs, targets = default_collate(good)
    return inputs, targets, bad
