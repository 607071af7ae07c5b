#!/usr/bin/env python
"""Procedural scenes for CPU runs: objects of several classes (shape, colour, texture) on varied
backgrounds (gradients, noise, crops of photos that ship inside scikit-image). Deterministic for a
seed. Written now as an ImageNet-style folder (ROOT/train/CLASS/*.png, the class being the scene's
largest object); the transfer layouts build on the same scenes.

  python tools/make_toy_data.py --out data/toy --seed 0 --num-images 512 --size 96
"""
import argparse
import os

import numpy as np
from PIL import Image, ImageDraw

CLASSES = ("circle", "square", "triangle", "ellipse", "diamond")


def _photo_backgrounds():
    """Photos shipped with scikit-image (no download); none if it is not installed."""
    try:
        from skimage import data
    except ImportError:
        return []
    photos = []
    for name in ("astronaut", "chelsea", "coffee", "rocket", "hubble_deep_field", "immunohistochemistry"):
        try:
            img = getattr(data, name)()
        except Exception:  # a data file missing from this install: use the others
            continue
        if img.ndim == 3 and img.shape[2] == 3:
            photos.append(img)
    return photos


def _background(rng, size, photos):
    kind = rng.integers(3 if photos else 2)
    if kind == 0:  # two-colour gradient
        a, b = rng.integers(0, 256, 3), rng.integers(0, 256, 3)
        t = np.linspace(0, 1, size)[None, :, None] if rng.random() < 0.5 else np.linspace(0, 1, size)[:, None, None]
        return np.broadcast_to(a * (1 - t) + b * t, (size, size, 3)).astype(np.uint8)
    if kind == 1:  # smooth noise
        small = rng.integers(0, 256, (6, 6, 3)).astype(np.uint8)
        return np.asarray(Image.fromarray(small).resize((size, size), Image.BICUBIC))
    photo = photos[rng.integers(len(photos))]
    crop = int(rng.integers(size, min(photo.shape[:2]) + 1))
    top, left = rng.integers(0, photo.shape[0] - crop + 1), rng.integers(0, photo.shape[1] - crop + 1)
    return np.asarray(Image.fromarray(photo[top:top + crop, left:left + crop]).resize((size, size), Image.BILINEAR))


def _polygon(cls, cx, cy, r, rng):
    if cls == "square":
        return [(cx - r, cy - r), (cx + r, cy - r), (cx + r, cy + r), (cx - r, cy + r)]
    if cls == "triangle":
        return [(cx, cy - r), (cx + r, cy + r), (cx - r, cy + r)]
    if cls == "diamond":
        return [(cx, cy - r), (cx + r, cy), (cx, cy + r), (cx - r, cy)]
    ry = r if cls == "circle" else r * rng.uniform(0.45, 0.75)
    angles = np.linspace(0, 2 * np.pi, 24, endpoint=False)
    return [(cx + r * np.cos(a), cy + ry * np.sin(a)) for a in angles]


def render_scene(rng, size, photos=()):
    """-> (RGB uint8 image, [dict(category, polygon, mask)]) with 1-3 objects, later ones on top."""
    img = Image.fromarray(_background(rng, size, photos).copy())
    objects = []
    for _ in range(int(rng.integers(1, 4))):
        cls = CLASSES[rng.integers(len(CLASSES))]
        r = rng.uniform(0.12, 0.3) * size
        cx, cy = rng.uniform(r, size - r), rng.uniform(r, size - r)
        polygon = [(float(x), float(y)) for x, y in _polygon(cls, cx, cy, r, rng)]
        mask_img = Image.new("L", (size, size), 0)
        ImageDraw.Draw(mask_img).polygon(polygon, fill=255)
        mask = np.asarray(mask_img) > 0
        colour = rng.integers(0, 256, 3)
        texture = np.ones((size, size, 1))
        if rng.random() < 0.5:  # stripes
            period = rng.integers(3, 8)
            texture = (0.6 + 0.4 * ((np.arange(size)[None, :] // period) % 2))[..., None].repeat(size, 0)
        fill = (colour * texture).clip(0, 255).astype(np.uint8)
        pixels = np.asarray(img).copy()
        pixels[mask] = fill[mask]
        img = Image.fromarray(pixels)
        for earlier in objects:  # keep masks exclusive: the new object occludes earlier ones
            earlier["mask"] &= ~mask
        objects.append({"category": cls, "polygon": polygon, "mask": mask})
    return np.asarray(img), [o for o in objects if o["mask"].any()]


def write_image_folder(out, num_images, size, seed):
    rng = np.random.default_rng(seed)
    photos = _photo_backgrounds()
    for i in range(num_images):
        img, objects = render_scene(rng, size, photos)
        largest = max(objects, key=lambda o: o["mask"].sum())["category"]
        folder = os.path.join(out, "train", largest)
        os.makedirs(folder, exist_ok=True)
        Image.fromarray(img).save(os.path.join(folder, f"{i:06d}.png"))
    return os.path.join(out, "train")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", required=True)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--num-images", type=int, default=512)
    parser.add_argument("--size", type=int, default=96)
    args = parser.parse_args(argv)
    path = write_image_folder(args.out, args.num_images, args.size, args.seed)
    print(f"wrote {args.num_images} images to {path}")


if __name__ == "__main__":
    main()
