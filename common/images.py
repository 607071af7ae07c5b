"""Reading images (any PIL mode as 8-bit RGB, large JPEGs decoded at a reduced scale), the ImageNet
statistics, and batching that leaves out unreadable images: shared by pre-training and classification."""
import contextlib
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch.utils.data import default_collate

from .errors import UserError

IMG_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class BadImageError(UserError, RuntimeError):
    """An image file that cannot be decoded; the message names it."""


def normalize(imgs: torch.Tensor) -> torch.Tensor:
    """uint8 (N, 3, H, W) -> float, normalised with the ImageNet statistics: the same arithmetic as
    ToTensor + Normalize (bit-identical), done where the batch lands (on a GPU: off the loader's CPUs)."""
    mean = torch.tensor(IMAGENET_MEAN, device=imgs.device).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD, device=imgs.device).view(1, 3, 1, 1)
    return imgs.float().div(255).sub(mean).div(std)


@contextlib.contextmanager
def image_errors(path: str) -> Iterator[None]:
    """What PIL raises for a file that is not a readable image, as a BadImageError naming the file."""
    try:
        yield
    except (OSError, ValueError, Image.DecompressionBombError) as e:
        raise BadImageError(f"cannot read image {path}: {e}") from e


def read_image(path: str, min_side: int | None = None) -> Image.Image:
    """An RGB image; with min_side, a JPEG is decoded at the smallest scale of 1/2, 1/4, 1/8 whose
    shorter side keeps min_side pixels (DCT-domain downscaling: several times faster for large photos)."""
    with image_errors(path), Image.open(path) as img:
        reduction = 1
        while min_side and reduction < 8 and min(img.size) / (2 * reduction) >= min_side:
            reduction *= 2
        if reduction > 1:
            full_size = img.size
            img.draft("RGB", (img.width // reduction, img.height // reduction))
            img.info["full_size"] = full_size  # for FullSizeRandomResizedCrop (conversions keep info)
        return to_rgb(img)


def to_rgb(img: Image.Image) -> Image.Image:
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


def collate(batch: Sequence[Any], collate_inputs: Callable[[list[Any]], Any] = default_collate) -> tuple[Any, Any, list[str]]:
    """Batches (input, target) pairs, leaving out the BadImageError items that the "skip" policy
    yields: -> (inputs, targets, [messages of the skipped images]). collate_inputs batches the inputs
    (the gpu backend's encoded images: common.gpu_data.EncodedBatch.of)."""
    bad = [str(item) for item in batch if isinstance(item, BadImageError)]
    good = [item for item in batch if not isinstance(item, BadImageError)]
    if not good:
        return None, None, bad
    return collate_inputs([x for x, _ in good]), default_collate([t for _, t in good]), bad
