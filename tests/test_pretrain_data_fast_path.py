"""The pre-training loader's fast path sees what the plain path sees: uint8 samples normalised on the
device equal ToTensor + Normalize bit for bit, and large JPEGs decoded in draft mode give the same
views up to resampling noise."""
import numpy as np
import torch
from PIL import Image
from torchvision import transforms

from common.images import IMAGENET_MEAN, IMAGENET_STD, normalize, read_image
from pretrain.data import PretrainDataset, min_decode_side


def _photo(path, width, height):
    from skimage import data

    Image.fromarray(data.astronaut()).resize((width, height), Image.BICUBIC).save(path, quality=95)
    return str(path)


def test_normalize_on_the_device_equals_totensor_normalize():
    img = Image.fromarray(np.random.default_rng(0).integers(0, 256, (40, 56, 3), dtype=np.uint8))
    reference = transforms.Compose([transforms.ToTensor(), transforms.Normalize(IMAGENET_MEAN, IMAGENET_STD)])(img)
    ours = normalize(transforms.PILToTensor()(img)[None])[0]
    assert torch.equal(ours, reference)


def test_draft_decoding_keeps_every_crop_at_full_resolution(tmp_path):
    need = min_decode_side(224, "crop_rand")
    assert need == 579  # the smallest crop (20% of the area, 3:4) keeps 224 px when the short side is >= 579
    imagenet_sized = _photo(tmp_path / "small.jpg", 500, 375)
    assert read_image(imagenet_sized, need).size == (500, 375)  # never reduced below what a crop needs
    with Image.open(imagenet_sized) as full:
        assert np.array_equal(np.asarray(read_image(imagenet_sized, need)), np.asarray(full.convert("RGB")))
    camera_sized = _photo(tmp_path / "large.jpg", 2400, 1800)
    assert read_image(camera_sized, need).size == (1200, 900)  # 1/2: 900 >= 579; 1/4 would give 450
    assert read_image(camera_sized, min_decode_side(224, "none")).size == (300, 225)  # centre crop needs 224


def test_draft_decoded_views_match_full_decoding_up_to_resampling_noise(tmp_path):
    paths = [_photo(tmp_path / f"{i}.jpg", 2400 + 8 * i, 1800) for i in range(3)]
    fast = PretrainDataset(paths, 64, 8)
    plain = PretrainDataset(paths, 64, 8)
    plain.min_side = None  # decode at full size
    assert fast.min_side == min_decode_side(64, "crop_rand")
    for index in range(3):
        (a, noise_a), (b, noise_b) = fast[index], plain[index]
        assert a.dtype == torch.uint8 and a.shape == (3, 64, 64) and torch.equal(noise_a, noise_b)
        same_view = (a.float() - b.float()).abs().mean()
        other_view = (a.float() - plain[(index + 1) % 3][0].float()).abs().mean()
        assert same_view < 4 and same_view < other_view / 4, (float(same_view), float(other_view))
