"""The gpu data backend (`data_backend='gpu'`), shared by pre-training and classification: DataLoader workers
read each image's encoded bytes and draw its augmentation (crop box, flip, colour jitter, erasing) from the
generators the PIL transform would draw from, in its order; the main process decodes the batch on the model's
device (`torchvision.io.decode_jpeg`: nvJPEG on a GPU, libjpeg-turbo on the CPU) and crops, resizes, flips,
jitters, normalises and erases there with PIL's arithmetic.

PIL stays the decoder of what decode_jpeg cannot take: anything but an 8-bit RGB or grayscale JPEG (PNG, CMYK,
16-bit, ...) and a JPEG without its end marker are decoded by PIL in the worker, and a JPEG that decode_jpeg
refuses in the main process (nvJPEG lacks some progressive or unusual files) is decoded by PIL there. A fallback
image keeps the view drawn for it, so the backends differ only by the JPEG decoder (none on the CPU) and by
PIL's fixed-point resampling (docs/benchmarks.md, "GPU data path"). The one other difference: the pil backend
decodes JPEGs much larger than any crop needs at a reduced DCT scale (common.images.read_image), this one
decodes them whole.
"""
from collections.abc import Iterator, Sequence
from typing import Any, cast
import functools
import io
from typing import NamedTuple

import torch
import torch.nn.functional as F
from PIL import Image
from timm.data.random_erasing import RandomErasing
from timm.data.transforms import RandomResizedCropAndInterpolation
from torch.utils.data import DataLoader
from torchvision import transforms
from torchvision.io import ImageReadMode, decode_jpeg
from torchvision.transforms.functional import pil_to_tensor

from .images import BadImageError, collate, image_errors, to_rgb

MODES = {transforms.InterpolationMode.BICUBIC: "bicubic", transforms.InterpolationMode.BILINEAR: "bilinear"}


class View(NamedTuple):
    """One sample's augmentation, drawn in the worker: the box (top, left, height, width) of the full image,
    resized to `size` (height, width), of which the window (top, left, height, width) is kept; a horizontal flip;
    ColorJitter's (order, brightness, contrast, saturation); RandomErasing's [(top, left, height, width, pixels)]."""
    box: tuple
    size: tuple
    window: tuple
    flip: bool
    jitter: tuple | None  # None: no ColorJitter
    erased: list


class Encoded(NamedTuple):
    """A sample's image as a worker reads it: the file's bytes (1-D uint8), or the pixels (3, H, W) that PIL
    decoded where decode_jpeg cannot; its full size (width, height); its path; its view once drawn."""
    data: torch.Tensor
    size: tuple
    path: str
    view: View | None = None


def read_encoded(path: str) -> Encoded:
    """The image at `path` undecoded (its header gives the size), or decoded by PIL as the pil backend reads it
    (common.images.to_rgb) where decode_jpeg could not take it."""
    with image_errors(path):
        with open(path, "rb") as f:
            data = f.read()
        with Image.open(io.BytesIO(data)) as img:
            # the end marker: decoders differ on truncated files, PIL says whether it is one
            if img.format == "JPEG" and img.mode in ("RGB", "L") and data.endswith(b"\xff\xd9"):
                return Encoded(torch.frombuffer(bytearray(data), dtype=torch.uint8), img.size, path)
            return Encoded(pil_to_tensor(to_rgb(img)), img.size, path)


class EncodedBatch(NamedTuple):
    """A batch as a worker sends it: every JPEG's bytes in one tensor (one shared-memory block, not one per image),
    `lengths` giving each sample's share (0: its PIL-decoded `pixels` instead), the views and the paths."""
    data: torch.Tensor
    lengths: list
    pixels: list
    views: list
    paths: list

    @classmethod
    def of(cls, samples: Sequence[Encoded]) -> "EncodedBatch":
        jpeg = [s.data.dim() == 1 for s in samples]
        data = torch.cat([s.data for s, j in zip(samples, jpeg) if j] or [torch.empty(0, dtype=torch.uint8)])
        return cls(data, [len(s.data) if j else 0 for s, j in zip(samples, jpeg)],
                   [None if j else s.data for s, j in zip(samples, jpeg)], [s.view for s in samples],
                   [s.path for s in samples])


class _ErasingRecorder:
    """Stands in for the image tensor in timm's RandomErasing, which then draws its boxes and pixels as it would
    on the image (the same generators, the same order) and writes them here."""

    erased: list[tuple]

    def __init__(self, height: int, width: int) -> None:
        self.dims, self.dtype, self.erased = (3, height, width), torch.float32, []

    def size(self) -> torch.Size:
        return torch.Size(self.dims)

    def __setitem__(self, key, pixels):
        _, rows, cols = key
        self.erased.append((rows.start, cols.start, rows.stop - rows.start, cols.stop - cols.start, pixels))


class GpuTransform:
    """A PIL transform (a Compose of the steps that pretrain/data.py and cls_transfer/transforms.py build) split
    in two: `draw` (in the worker) takes each random step's draws as the step itself makes them, `apply` (in the
    main process) does the pixel work on the device. A step it cannot do on the device is refused when built."""

    # the order the device applies the steps in; a transform must list them so (flip and jitter commute)
    ORDER = ("geometry", "flip", "jitter", "to_tensor", "normalize", "erase")

    def __init__(self, transform: transforms.Compose) -> None:
        self.steps = list(transform.transforms)
        self.mode, self.to_tensor, self.normalize = "bicubic", False, None
        stages = [self._check(i, step) for i, step in enumerate(self.steps)]
        if stages != sorted(stages, key=self.ORDER.index):
            raise ValueError(f"data_backend='gpu' applies {', '.join(self.ORDER)} in this order, not {stages}")

    def _check(self, index, step):
        """The stage of a step that the device can do; a ValueError for one it cannot."""
        if isinstance(step, (RandomResizedCropAndInterpolation, transforms.Resize)) or hasattr(step, "crop_box"):
            if index or step.interpolation not in MODES or getattr(step, "max_size", None):
                raise ValueError(f"data_backend='gpu' resizes the full image first, bicubic or bilinear; not {step}")
            self.mode = MODES[step.interpolation]
            return "geometry"
        if isinstance(step, (transforms.CenterCrop, transforms.RandomCrop)):
            if isinstance(step, transforms.RandomCrop) and (step.padding is not None or step.pad_if_needed):
                raise ValueError(f"data_backend='gpu' cannot pad: {step}")
            return "geometry"
        if isinstance(step, transforms.RandomHorizontalFlip):
            return "flip"
        if isinstance(step, transforms.ColorJitter) and step.hue is None:
            return "jitter"
        if isinstance(step, transforms.PILToTensor):
            return "to_tensor"
        if isinstance(step, transforms.ToTensor):  # timm's MaybeToTensor too
            self.to_tensor = True
            return "to_tensor"
        if isinstance(step, transforms.Normalize):
            self.normalize = (torch.as_tensor(step.mean).view(1, 3, 1, 1), torch.as_tensor(step.std).view(1, 3, 1, 1))
            return "normalize"
        if isinstance(step, RandomErasing):
            return "erase"
        raise ValueError(f"data_backend='gpu' cannot apply {type(step).__name__} on the device; use data_backend='pil'")

    def __call__(self, sample: Encoded) -> Encoded:
        return sample._replace(view=self.draw(*sample.size))

    def draw(self, width: int, height: int) -> View:
        """The view of a width x height image, drawn as the PIL transform draws it (same generators, same order)."""
        box = (0, 0, height, width)
        size: tuple[int, ...] = (height, width)
        window: tuple[int, ...] = (0, 0, height, width)
        flip, jitter, erased = False, None, []
        for step in self.steps:
            if hasattr(step, "crop_box"):  # pretrain's and the linear probe's random crops
                box, size = step.crop_box(width, height), tuple(step.size)
                window = (0, 0, *size)
            elif isinstance(step, RandomResizedCropAndInterpolation):  # timm's (fine-tuning)
                box, size = step.get_params(torch.empty(1).expand(1, height, width), step.scale, step.ratio), step.size
                window = (0, 0, *size)
            elif isinstance(step, transforms.Resize):
                size = resized_size(height, width, step.size)
                window = (0, 0, *size)
            elif isinstance(step, transforms.CenterCrop):
                crop_h, crop_w = step.size  # torchvision's rounding of the offsets
                window = (window[0] + int(round((window[2] - crop_h) / 2)),
                          window[1] + int(round((window[3] - crop_w) / 2)), crop_h, crop_w)
            elif isinstance(step, transforms.RandomCrop):
                top, left, crop_h, crop_w = step.get_params(torch.empty(1).expand(1, *window[2:]), step.size)
                window = (window[0] + top, window[1] + left, crop_h, crop_w)
            elif isinstance(step, transforms.RandomHorizontalFlip):
                flip = bool(torch.rand(1) < step.p)
            elif isinstance(step, transforms.ColorJitter):
                order, *factors, _ = step.get_params(step.brightness, step.contrast, step.saturation, step.hue)
                jitter = (order.tolist(), *factors)
            elif isinstance(step, RandomErasing):
                recorder = _ErasingRecorder(*window[2:])
                step(recorder)
                erased = recorder.erased
        return View(tuple(box), tuple(size), tuple(window), flip, jitter, erased)

    def apply(self, images: Sequence[torch.Tensor], views: Sequence[View], device: torch.device) -> torch.Tensor:
        """The batch the PIL transform would give for these decoded images (uint8 (3, H, W) on `device`) and views."""
        out = torch.stack([self._resampled(img, view) for img, view in zip(images, views)])
        if any(view.flip for view in views):
            flips = torch.tensor([view.flip for view in views], device=device)
            out = torch.where(flips.view(-1, 1, 1, 1), out.flip(-1), out)
        if any(view.jitter for view in views):
            # one transform draws every view of a batch: all have a ColorJitter or none has
            out = color_jitter(out, cast("list[tuple]", [view.jitter for view in views]))
        # ToTensor's floats in [0, 1]; PILToTensor's uint8 (pre-training normalises where the batch is used)
        out = out.div(255) if self.to_tensor else out.to(torch.uint8)
        if self.normalize is not None:
            mean, std = self.normalize
            out = out.sub(mean.to(device)).div(std.to(device))
        for i, view in enumerate(views):
            for top, left, height, width, pixels in view.erased:
                out[i, :, top:top + height, left:left + width] = pixels.to(device)
        return out

    def _resampled(self, img, view):
        """The view's window of its box resized as PIL resizes an 8-bit image: horizontally, then vertically, each
        pass rounded to 8 bits (that rounding, at strong edges, is most of what tells a one-pass resize from PIL's)."""
        top, left, height, width = view.box
        x = img[None, :, top:top + height, left:left + width].float()
        for size in ((height, view.size[1]), view.size):
            if tuple(x.shape[-2:]) != size:
                x = F.interpolate(x, size=size, mode=self.mode, antialias=True).clamp_(0, 255).round_()
        top, left, height, width = view.window
        return x[0, :, top:top + height, left:left + width]


def resized_size(height: int, width: int, size: int | Sequence[int]) -> tuple[int, ...]:
    """torchvision's Resize output (height, width): an int sets the shorter side, the other scaled and rounded down."""
    if not isinstance(size, int) and len(size) == 2:
        return tuple(size)
    short = size if isinstance(size, int) else size[0]
    if width <= height:
        return int(short * height / width), short
    return short, int(short * width / height)


def color_jitter(imgs: torch.Tensor, params: Sequence[tuple]) -> torch.Tensor:
    """torchvision's ColorJitter on PIL images (ImageEnhance: 8-bit blends in float32, truncated) for a batch of
    integer-valued float images: params[i] = (order, brightness, contrast, saturation) as ColorJitter drew them."""
    n = len(imgs)
    factors = torch.tensor([[1.0 if f is None else f for f in p[1:]] for p in params], device=imgs.device)

    def blend(degenerate: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:  # PIL's Image.blend(degenerate, image, factor)
        return (degenerate + factor.view(-1, 1, 1, 1) * (imgs - degenerate)).clamp_(0, 255).floor_()

    for k in range(4):
        for op in range(3):  # brightness, contrast, saturation (hue is refused when the transform is built)
            chosen = [p[0][k] == op and p[1 + op] is not None for p in params]
            if not any(chosen):
                continue
            if op == 0:
                degenerate = torch.zeros_like(imgs)
            elif op == 1:  # the grey of the image's mean luma, rounded
                degenerate = (pil_luma(imgs).double().mean((1, 2, 3), keepdim=True) + 0.5).floor().float()
            else:
                degenerate = pil_luma(imgs)
            mask = torch.tensor(chosen, device=imgs.device).view(n, 1, 1, 1)
            imgs = torch.where(mask, blend(degenerate, factors[:, op]), imgs)
    return imgs


def pil_luma(imgs: torch.Tensor) -> torch.Tensor:
    """PIL's RGB -> L conversion (ITU-R 601-2 in 16-bit fixed point), (N, 3, H, W) -> (N, 1, H, W)."""
    r, g, b = imgs.to(torch.int32).unbind(1)
    return ((19595 * r + 38470 * g + 7471 * b + 0x8000) >> 16).unsqueeze(1).float()


class DeviceBatches:
    """A DataLoader of Encoded samples whose batches come out finished on `device`, as the pil backend's do:
    (images, targets, messages of the unreadable images left out). An image that neither decode_jpeg nor PIL
    can read follows bad_images: "fail" raises, "skip" leaves it out and reports it."""

    def __init__(self, loader: DataLoader, transform: GpuTransform, device: torch.device, bad_images: str) -> None:
        self.loader, self.transform, self.device, self.bad_images = loader, transform, device, bad_images

    def __len__(self) -> int:
        return len(self.loader)

    def __iter__(self) -> Iterator[tuple[torch.Tensor | None, torch.Tensor | None, list[str]]]:
        # the loader's iterator at once: it draws its workers' seed from the global generator now, as the pil backend's
        return self._finished(iter(self.loader))

    def _finished(self, batches):
        for batch, targets, bad in batches:
            if batch is None:
                yield None, None, bad
                continue
            images = self.decode(batch)
            failed = [img for img in images if isinstance(img, BadImageError)]
            if failed and self.bad_images == "fail":
                raise failed[0]
            keep = [i for i, img in enumerate(images) if not isinstance(img, BadImageError)]
            bad = bad + [str(e) for e in failed]
            if not keep:
                yield None, None, bad
                continue
            imgs = self.transform.apply([images[i] for i in keep], [batch.views[i] for i in keep], self.device)
            yield imgs, targets[keep].to(self.device, non_blocking=True), bad

    def decode(self, batch: EncodedBatch) -> list[torch.Tensor | BadImageError | None]:
        """Each image of the batch as uint8 (3, H, W) on the device, or the BadImageError of one PIL cannot read."""
        images = [p if p is None else p.to(self.device) for p in batch.pixels]
        jpegs = [i for i, length in enumerate(batch.lengths) if length]
        chunks = batch.data.split([batch.lengths[i] for i in jpegs])
        try:
            decoded = decode_jpeg(list(chunks), mode=ImageReadMode.RGB, device=self.device) if jpegs else []
        except RuntimeError:  # one refused image fails the batch: each alone, PIL for the refused ones
            decoded = [self._decode_one(chunk, batch.paths[i]) for i, chunk in zip(jpegs, chunks)]
        for i, img in zip(jpegs, decoded):
            images[i] = img
        return images

    def _decode_one(self, data, path):
        try:
            return decode_jpeg(data, mode=ImageReadMode.RGB, device=self.device)
        except RuntimeError:
            try:
                with image_errors(path), Image.open(io.BytesIO(data.numpy().tobytes())) as img:
                    return pil_to_tensor(to_rgb(img)).to(self.device)
            except BadImageError as e:
                return e


def data_loader(dataset: torch.utils.data.Dataset, transform: object, device: torch.device, bad_images: str,
                **kwargs: Any) -> DataLoader | DeviceBatches:
    """A DataLoader of `dataset` (kwargs: DataLoader's) whose transform is `transform`: for a GpuTransform (the
    gpu backend) batches finished on `device`; else common.images.collate's batches, pinned for a GPU."""
    if not isinstance(transform, GpuTransform):
        return DataLoader(dataset, collate_fn=collate, pin_memory=device.type == "cuda", **kwargs)
    # nothing to pin: decode_jpeg copies the bytes itself
    loader = DataLoader(dataset, collate_fn=functools.partial(collate, collate_inputs=EncodedBatch.of), **kwargs)
    return DeviceBatches(loader, transform, device, bad_images)
