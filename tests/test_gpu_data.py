"""The gpu data backend (data_backend='gpu', common/gpu_data.py) on the CPU: the workers draw the PIL path's
views for the same seeds, the device path computes the PIL path's pixels up to rounding, what decode_jpeg cannot
take goes through PIL with the same view, and both trainers run with it."""
import csv
import os
import random
import subprocess
import sys

import numpy as np
import pytest
import torch
import torchvision.transforms.functional as TF
from conftest import ROOT, TINY_ENCODER, TINY_PRETRAIN_ARGS, user_error
from PIL import Image

from cls_transfer.config import ClsConfig, load_cls_config
from cls_transfer.engine import ClsTrainer
from cls_transfer.transforms import eval_transform, train_transform, transforms_for
from common import gpu_data
from common.checkpoint_files import load_file
from common.config import check_ranges
from common.errors import UserError
from common.gpu_data import DeviceBatches, EncodedBatch, GpuTransform, read_encoded
from common.images import BadImageError, read_image
from common.training import ResumableSampler
from pretrain.config import PretrainConfig
from pretrain.data import AUGMENTATIONS, PretrainDataset
from reproduction.toy_data import write_classification_sets

CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    """8 JPEGs (quality 90) of real photos, 96-180 px wide, of several aspect ratios."""
    from skimage import data

    folder = tmp_path_factory.mktemp("photos")
    sources = [data.astronaut(), data.chelsea(), data.coffee(), data.rocket()]
    paths = []
    for i in range(8):
        size = (96 + 12 * i, 160 - 8 * i) if i % 2 else (180 - 10 * i, 100 + 4 * i)
        paths.append(str(folder / f"{i}.jpg"))
        Image.fromarray(sources[i % 4]).resize(size, Image.BICUBIC).save(paths[-1], quality=90)
    return paths


def seed(value):
    """The generators the classification transforms draw from (a DataLoader worker seeds them so)."""
    random.seed(value)
    torch.manual_seed(value)


def device_batch(transform, samples):
    """What DeviceBatches makes of these samples (Encoded, their views drawn) with `transform`."""
    batch = EncodedBatch.of(samples)
    return transform.apply(DeviceBatches(None, transform, CPU, "fail").decode(batch), batch.views, CPU), batch.views


def in_8_bit_units(a, b, normalised):
    """|a - b| in the units of 8-bit pixel values (normalised images: times 255 x the channel's std)."""
    diff = (a.double() - b.double()).abs()
    if normalised:
        diff = diff * 255 * torch.tensor((0.229, 0.224, 0.225), dtype=torch.float64).view(1, 3, 1, 1)
    return float(diff.max()), float(diff.mean())


class Recorded:
    """The crop boxes and flips the PIL transforms apply (torchvision's resized_crop and hflip, which
    pretrain's, timm's and the linear probe's crops call)."""

    def __init__(self, monkeypatch):
        self.boxes, self.flips = [], []
        resized_crop, hflip = TF.resized_crop, TF.hflip

        def record_crop(img, top, left, height, width, *args, **kwargs):
            self.boxes.append((top, left, height, width))
            self.flips.append(False)
            return resized_crop(img, top, left, height, width, *args, **kwargs)

        def record_flip(img):
            self.flips[-1] = True
            return hflip(img)

        monkeypatch.setattr(TF, "resized_crop", record_crop)
        monkeypatch.setattr(TF, "hflip", record_flip)


def test_pretraining_views_are_the_pil_crops_of_the_same_seeds(photos, monkeypatch):
    pil, gpu = PretrainDataset(photos, 64, 8), PretrainDataset(photos, 64, 8, data_backend="gpu")
    recorded = Recorded(monkeypatch)
    for epoch in (0, 1):
        pil.set_epoch(epoch)
        gpu.set_epoch(epoch)
        for index in range(len(photos)):
            (_, pil_noise), (sample, gpu_noise) = pil[index], gpu[index]
            assert torch.equal(pil_noise, gpu_noise)
            assert (sample.view.box, sample.view.flip) == (recorded.boxes[-1], recorded.flips[-1])
    assert len(set(recorded.boxes)) == 2 * len(photos) and any(recorded.flips) and not all(recorded.flips)


@pytest.mark.parametrize("mode", ["finetune", "linprobe"])
def test_classification_views_are_the_pil_crops_of_the_same_generators(photos, monkeypatch, mode):
    """The classification transforms draw from the worker's generators as they stand (seeded by the DataLoader):
    seeded alike, both backends draw the same boxes and flips, the colour jitter and erasing among them."""
    cfg = ClsConfig(input_size=32, mode=mode, auto_augment="", reprob=0.5)
    pil, gpu = train_transform(cfg), GpuTransform(train_transform(cfg))
    recorded = Recorded(monkeypatch)
    seed(3)
    for path in photos:
        pil(read_image(path))
    seed(3)
    views = [gpu(read_encoded(path)).view for path in photos]
    assert [(v.box, v.flip) for v in views] == list(zip(recorded.boxes, recorded.flips))
    assert len(set(recorded.boxes)) == len(photos) and any(recorded.flips) and not all(recorded.flips)
    if mode == "finetune":  # timm's ColorJitter(0.4) without RandAugment, and random erasing
        assert all(v.jitter for v in views) and any(v.erased for v in views) and not all(v.erased for v in views)


def test_pretraining_pixels_equal_pil_up_to_rounding(photos):
    """Measured here (8 photos, 64 px), max / mean abs difference of 255 levels: none 2 / 0.00043, crop_fixed
    1 / 0.00052, crop_rand 1 / 0.00050, crop_rand_jitter 3 / 0.00070. Decoding is the same on the CPU
    (libjpeg-turbo in both); what differs is PIL's fixed-point resampling, by a level in about 1 pixel in 2,000,
    which the jitter's factors can turn into a few. A box off by one pixel, or a one-pass float resize (no
    rounding between the passes), gives a mean of 0.1 or more."""
    for augmentation in AUGMENTATIONS:
        pil = PretrainDataset(photos, 64, 8, augmentation=augmentation)
        pil.min_side = None  # no draft decoding (the one other difference: common/gpu_data.py)
        gpu = PretrainDataset(photos, 64, 8, augmentation=augmentation, data_backend="gpu")
        reference = torch.stack([pil[i][0] for i in range(len(photos))])
        images, _ = device_batch(gpu.transform, [gpu[i][0] for i in range(len(photos))])
        assert images.dtype == torch.uint8 and images.shape == reference.shape
        worst, mean = in_8_bit_units(images, reference, normalised=False)
        assert worst <= (4 if augmentation == "crop_rand_jitter" else 2) and mean < 0.002, (augmentation, worst, mean)


@pytest.mark.parametrize("setting", [dict(mode="finetune", auto_augment="", reprob=0.5), dict(mode="linprobe"), "eval"])
def test_classification_pixels_equal_pil_up_to_rounding(photos, setting):
    """Measured here (8 photos, 32 px), max / mean abs difference in 8-bit levels: fine-tuning without RandAugment
    (timm's crop, flip, ColorJitter(0.4), random erasing) 1.0 / 0.00016; linear probing 1.0 / 0.00004;
    evaluation (resize, centre crop) 1.0 / 0.00004 (other seeds gave up to 4 with the jitter, whose factors
    scale a resampling difference of one level)."""
    cfg = ClsConfig(input_size=32, **(setting if isinstance(setting, dict) else {}))
    make = eval_transform if setting == "eval" else train_transform
    pil, gpu = make(cfg), GpuTransform(make(cfg))
    seed(5)
    reference = torch.stack([pil(read_image(path)) for path in photos])
    seed(5)
    images, _ = device_batch(gpu, [gpu(read_encoded(path)) for path in photos])
    worst, mean = in_8_bit_units(images, reference, normalised=True)
    assert worst <= 4 and mean < 0.002, (setting, worst, mean)


def test_what_decode_jpeg_cannot_take_goes_through_pil_with_the_same_view(tmp_path, monkeypatch):
    """PNG (RGBA, 16-bit, palette), CMYK and grayscale JPEGs, a JPEG with bytes after its end marker, and a JPEG
    that decode_jpeg refuses in the main process: each gets the PIL path's view and pixels (up to rounding)."""
    from skimage import data

    photo = Image.fromarray(data.coffee()).resize((150, 100), Image.BICUBIC)
    files = {"rgba.png": photo.convert("RGBA"), "palette.png": photo.convert("P"), "cmyk.jpg": photo.convert("CMYK"),
             "gray.jpg": photo.convert("L"), "refused.jpg": photo, "trailing.jpg": photo}
    for name, img in files.items():
        img.save(tmp_path / name, quality=90)
    Image.fromarray((np.asarray(photo.convert("L")).astype(np.uint16) * 257)).save(tmp_path / "gray16.png")
    with open(tmp_path / "trailing.jpg", "ab") as f:
        f.write(b"camera maker's data")
    paths = sorted(str(p) for p in tmp_path.iterdir())
    decoded_by_pil = {os.path.basename(p) for p in paths if read_encoded(p).data.dim() == 3}
    assert decoded_by_pil == {"rgba.png", "palette.png", "gray16.png", "cmyk.jpg", "trailing.jpg"}  # in the worker
    assert Image.open(tmp_path / "gray16.png").mode.startswith("I")

    refused = os.path.getsize(tmp_path / "refused.jpg")
    decode_jpeg = gpu_data.decode_jpeg

    def decode_refusing_one(data, **kwargs):  # as nvJPEG refuses some files; one refused fails a whole list
        if isinstance(data, list) and any(len(d) == refused for d in data) or len(data) == refused:
            raise RuntimeError("not supported")
        return decode_jpeg(data, **kwargs)

    monkeypatch.setattr(gpu_data, "decode_jpeg", decode_refusing_one)
    pil, gpu = PretrainDataset(paths, 48, 8), PretrainDataset(paths, 48, 8, data_backend="gpu")
    pil.min_side = None
    reference = torch.stack([pil[i][0] for i in range(len(paths))])
    images, views = device_batch(gpu.transform, [gpu[i][0] for i in range(len(paths))])
    worst, mean = in_8_bit_units(images, reference, normalised=False)
    assert worst <= 2 and mean < 0.002, (worst, mean)
    assert len({view.box for view in views}) == len(paths)


def test_an_image_no_decoder_reads_is_left_out_or_stops_as_bad_images_says(photos):
    transform = GpuTransform(train_transform(ClsConfig(input_size=32, mode="linprobe")))
    samples = [transform(read_encoded(path)) for path in photos[:3]]
    broken = samples[1]._replace(data=torch.tensor(list(b"\xff\xd8 not a JPEG \xff\xd9"), dtype=torch.uint8),
                                 path="broken.jpg")
    batch = (EncodedBatch.of([samples[0], broken, samples[2]]), torch.tensor([0, 1, 2]), [])
    images, labels, bad = next(iter(DeviceBatches([batch], transform, CPU, "skip")))
    assert images.shape == (2, 3, 32, 32) and labels.tolist() == [0, 2]
    assert len(bad) == 1 and bad[0].startswith("cannot read image broken.jpg")
    with pytest.raises(BadImageError, match="cannot read image broken.jpg"):
        next(iter(DeviceBatches([batch], transform, CPU, "fail")))


def test_a_resumed_epoch_reads_the_rest_of_the_same_batches(photos):
    """Mid-epoch resume: the sampler skips the samples trained on, and every sample's view comes from its seed."""
    dataset = PretrainDataset(photos, 32, 8, data_backend="gpu")
    sampler = ResumableSampler(dataset, 1, 0, shuffle=True, seed=0, drop_last=True)
    loader = gpu_data.data_loader(dataset, dataset.transform, CPU, "fail", batch_size=2, sampler=sampler)
    dataset.set_epoch(1)
    sampler.set_epoch(1)
    full = list(loader)
    sampler.set_epoch(1, skip=4)
    resumed = list(loader)
    assert len(full) == 4 and len(resumed) == 2
    for (a, noise_a, _), (b, noise_b, _) in zip(full[2:], resumed):
        assert torch.equal(a, b) and torch.equal(noise_a, noise_b)


def test_one_epoch_of_pretraining_through_the_tool(photos, tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    for path in photos:
        os.symlink(path, data / os.path.basename(path))
    Image.open(photos[0]).save(data / "a.png")  # one through PIL
    out = tmp_path / "run"
    result = subprocess.run([sys.executable, os.path.join(ROOT, "tools/pretrain.py"), "--cfg", "pretrain/mae_vit_tiny_cpu.py",
                             "--data", str(data), "--output-dir", str(out), *TINY_PRETRAIN_ARGS, "epochs=1",
                             "num_workers=1", "data_backend=gpu"], capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0, result.stderr[-3000:]
    with open(out / "log.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 1 and float(rows[0]["loss"]) > 0
    ckpt = load_file(str(out / "checkpoint-last.pth"))  # weights_only=True
    assert ckpt["epoch"] == 1 and ckpt["config"]["data_backend"] == "gpu"


def test_classification_trains_and_evaluates_with_the_gpu_backend(tmp_path):
    sets = write_classification_sets(str(tmp_path / "cls"), num_train=16, num_val=6, size=32, seed=3,
                                      datasets=("imagenet",))
    overrides = dict(data_root=sets["imagenet"], output_dir=str(tmp_path / "run"), results_csv=str(tmp_path / "r.csv"),
                     backbone_overrides=dict(TINY_ENCODER, depth=1), num_workers=0, mode="scratch", epochs=1,
                     batch_size=4, input_size=32, precision="fp32", data_backend="gpu", auto_augment="", reprob=0.25,
                     mixup=0.8, cutmix=1.0)
    cfg = load_cls_config(os.path.join(ROOT, "configs/cls/tiny_cpu.py"), [f"{k}={v!r}" for k, v in overrides.items()])
    top1, top5 = ClsTrainer(cfg).train()
    assert 0 <= top1 <= top5 <= 100


def test_randaugment_with_the_gpu_backend_is_refused_naming_both():
    with pytest.raises(UserError) as refused:
        transforms_for(ClsConfig(data_backend="gpu"))  # the fine-tuning recipe: RandAugment (9, 0.5)
    message = str(refused.value)
    assert "\n" not in message and "data_backend='gpu'" in message and "auto_augment='rand-m9-mstd0.5-inc1'" in message
    transforms_for(ClsConfig(data_backend="gpu", mode="linprobe"))  # the linear probe has none


def test_a_data_backend_that_does_not_exist_is_one_line(photos, tmp_path):
    for config_class in (PretrainConfig, ClsConfig):
        check_ranges(config_class(data_backend="gpu"))
        with pytest.raises(UserError, match="data_backend='cuda' is not a choice: it must be one of 'pil', 'gpu'"):
            check_ranges(config_class(data_backend="cuda"))
    line = user_error("pretrain.py", "--cfg", "pretrain/mae_vit_tiny_cpu.py", "--data", os.path.dirname(photos[0]),
                      "--output-dir", tmp_path / "run", *TINY_PRETRAIN_ARGS, "data_backend=cuda")
    assert line == "error: data_backend='cuda' is not a choice: it must be one of 'pil', 'gpu'"
