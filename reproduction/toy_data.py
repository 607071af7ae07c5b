"""Procedural scenes for CPU runs: objects of several classes (shape, colour, texture) on varied
backgrounds (gradients, noise, crops of photos that ship inside scikit-image). Deterministic for a
seed. Written as an ImageNet-style folder for pre-training (ROOT/train/CLASS/*.png, the class being
the scene's largest object), as single-object labelled scenes in the published layouts of ImageNet,
iNaturalist 2017/18/19, Places205 and Places365, as COCO instances and as an ADE20K-layout
segmentation set. Its command line is tools/make_toy_data.py.
"""
import json
import os
from collections.abc import Sequence
from typing import Any

import numpy as np
from PIL import Image, ImageDraw

CLASSES = ("circle", "square", "triangle", "ellipse", "diamond")
# Each classification class has a shape, a typical colour (jittered) and a typical texture, so that a
# small model can tell classes apart from a few hundred images, as in a real object category.
CLASS_COLOURS = {"circle": (220, 60, 50), "square": (60, 180, 75), "triangle": (50, 90, 220),
                 "ellipse": (240, 200, 40), "diamond": (170, 60, 200)}
CLASS_STRIPES = {"circle": 0.8, "square": 0.2, "triangle": 0.2, "ellipse": 0.8, "diamond": 0.5}
# The detection and segmentation sets have categories of their own, as COCO's and ADE20K's are not
# ImageNet's: other shapes, each with its own texture and a colour family it shares with another
# category, so that colour, which the classification labels teach, does not tell them apart. The
# pre-training images hold both kinds of object; their labels (the supervised baseline's) name the
# classification object only.
DENSE_CLASSES = ("cross", "star", "arrow", "lshape", "hexagon")
DENSE_LOOKS = {"cross": ("warm", "hstripes"), "star": ("warm", "checker"), "arrow": ("cool", "vstripes"),
               "lshape": ("cool", "plain"), "hexagon": ("any", "dots")}
COLOUR_FAMILIES = {"warm": (230, 120, 40), "cool": (40, 170, 200)}


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
    if cls in _DENSE_OUTLINES:  # unit outlines, scaled and turned by a random angle
        angle = rng.uniform(0, 2 * np.pi)
        c, s = np.cos(angle), np.sin(angle)
        return [(cx + r * (x * c - y * s), cy + r * (x * s + y * c)) for x, y in _DENSE_OUTLINES[cls]]
    if cls == "square":
        return [(cx - r, cy - r), (cx + r, cy - r), (cx + r, cy + r), (cx - r, cy + r)]
    if cls == "triangle":
        return [(cx, cy - r), (cx + r, cy + r), (cx - r, cy + r)]
    if cls == "diamond":
        return [(cx, cy - r), (cx + r, cy), (cx, cy + r), (cx - r, cy)]
    ry = r if cls == "circle" else r * rng.uniform(0.45, 0.75)
    angles = np.linspace(0, 2 * np.pi, 24, endpoint=False)
    return [(cx + r * np.cos(a), cy + ry * np.sin(a)) for a in angles]


def _star(points, inner):
    angles = np.linspace(0, 2 * np.pi, 2 * points, endpoint=False)
    return [((1 if k % 2 == 0 else inner) * np.cos(a), (1 if k % 2 == 0 else inner) * np.sin(a)) for k, a in enumerate(angles)]


_DENSE_OUTLINES = {
    "cross": [(-0.35, -1), (0.35, -1), (0.35, -0.35), (1, -0.35), (1, 0.35), (0.35, 0.35), (0.35, 1), (-0.35, 1),
              (-0.35, 0.35), (-1, 0.35), (-1, -0.35), (-0.35, -0.35)],
    "star": _star(5, 0.45),
    "arrow": [(-1, -0.3), (0.2, -0.3), (0.2, -0.8), (1, 0), (0.2, 0.8), (0.2, 0.3), (-1, 0.3)],
    "lshape": [(-0.8, -1), (-0.2, -1), (-0.2, 0.4), (0.8, 0.4), (0.8, 1), (-0.8, 1)],
    "hexagon": [(np.cos(a), np.sin(a)) for a in np.linspace(0, 2 * np.pi, 6, endpoint=False)],
}


def _texture(kind, size, rng, periods=(3, 8)):
    """A multiplicative (size, size, 1) brightness pattern with a period in [periods) pixels."""
    if kind == "plain":
        return np.ones((size, size, 1))
    period = int(rng.integers(*periods))
    y, x = np.mgrid[:size, :size]
    on = {"hstripes": (y // period) % 2, "vstripes": (x // period) % 2, "checker": (x // period + y // period) % 2,
          "dots": ((x % period) < period / 2) & ((y % period) < period / 2)}[kind]
    return (0.6 + 0.4 * on)[..., None]


def _appearance(cls, size, rng):
    """(colour, texture) of one object: a classification class's own colour and stripes, or a
    detection/segmentation category's texture in its colour family's jittered colour."""
    if cls in CLASS_COLOURS:
        colour = np.array(CLASS_COLOURS[cls]) + rng.normal(0, 30, 3)
        return colour, _texture("vstripes" if rng.random() < CLASS_STRIPES[cls] else "plain", size, rng)
    family, texture = DENSE_LOOKS[cls]
    colour = rng.uniform(40, 240, 3) if family == "any" else np.array(COLOUR_FAMILIES[family]) + rng.normal(0, 25, 3)
    return colour, _texture(texture, size, rng, periods=(4, 7))


def render_scene(rng: np.random.Generator, size: int, photos: Sequence[np.ndarray] = (), max_objects: int = 3,
                 categories: Sequence[str] = CLASSES, distractors: Sequence[str] = (),
                 max_distractors: int = 0) -> tuple[np.ndarray, list[dict[str, Any]]]:
    """-> (RGB uint8 image, [dict(category, polygon, mask)]) with 1..max_objects objects of `categories`
    and 0..max_distractors of `distractors` in random order, later ones on top; only the objects
    of `categories` are returned."""
    img = Image.fromarray(_background(rng, size, photos).copy())
    drawn = [categories[int(rng.integers(len(categories)))] for _ in range(int(rng.integers(1, max_objects + 1)))]
    if distractors:
        drawn += [distractors[int(rng.integers(len(distractors)))] for _ in range(int(rng.integers(0, max_distractors + 1)))]
    objects: list[dict[str, Any]] = []
    for cls in (drawn[k] for k in rng.permutation(len(drawn))):
        r = rng.uniform(*((0.16, 0.33) if cls in DENSE_LOOKS else (0.12, 0.3))) * size
        cx, cy = rng.uniform(r, size - r), rng.uniform(r, size - r)
        polygon = [(float(x), float(y)) for x, y in _polygon(cls, cx, cy, r, rng)]
        mask_img = Image.new("L", (size, size), 0)
        ImageDraw.Draw(mask_img).polygon(polygon, fill=255)
        mask = np.asarray(mask_img) > 0
        colour, texture = _appearance(cls, size, rng)
        fill = (colour * texture).clip(0, 255).astype(np.uint8)
        pixels = np.asarray(img).copy()
        pixels[mask] = fill[mask]
        img = Image.fromarray(pixels)
        for earlier in objects:  # keep masks exclusive: the new object occludes earlier ones
            earlier["mask"] &= ~mask
        objects.append({"category": cls, "polygon": polygon, "mask": mask})
    return np.asarray(img), [o for o in objects if o["mask"].any() and o["category"] in categories]


def write_image_folder(out: str, num_images: int, size: int, seed: int, num_val: int = 0, shards: int = 1,
                       image_format: str = "png") -> str:
    """Unlabelled-style pre-training scenes as an ImageNet-style folder OUT/train/CLASS/*.png (and
    OUT/val/CLASS/*.png with num_val > 0; *.jpg with image_format="jpg"): objects of both kinds, the folder
    being the largest classification object's class, the label the supervised baseline trains on.
    shards > 1 draws the images in that many independent parts (write_image_folder_shard), which can be
    written in parallel; the data depend on the number of shards, not on how they are run."""
    for shard in range(shards):
        write_image_folder_shard(out, num_images, size, seed, num_val, shards, shard, image_format)
    return os.path.join(out, "train")


def write_image_folder_shard(out: str, num_images: int, size: int, seed: int, num_val: int, shards: int, shard: int,
                             image_format: str = "png") -> None:
    """Part `shard` of write_image_folder's images: a contiguous range of each split's indices, drawn from
    a generator of its own (seeded [seed, shard]; a single shard: seeded `seed`, as it always was)."""
    rng = np.random.default_rng(seed if shards == 1 else [seed, shard])
    photos = _photo_backgrounds()
    save_args = {"quality": 95} if image_format == "jpg" else {}
    for split, count in (("train", num_images), ("val", num_val)):
        for i in range(count * shard // shards, count * (shard + 1) // shards):
            objects: list[dict[str, Any]] = []
            while not objects:  # drawn again when the dense objects covered the classification one
                img, objects = render_scene(rng, size, photos, max_objects=1, distractors=DENSE_CLASSES, max_distractors=2)
            largest = max(objects, key=lambda o: o["mask"].sum())["category"]
            _save(os.path.join(out, split, largest, f"{i:06d}.{image_format}"), img, **save_args)


def _labelled_scenes(rng, count, size, photos):
    """Single-object scenes labelled by the object's class (0..len(CLASSES)-1)."""
    scenes = []
    for _ in range(count):
        img, objects = render_scene(rng, size, photos, max_objects=1)
        scenes.append((img, CLASSES.index(objects[0]["category"])))
    return scenes


def _save(path, img, **save_args):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    Image.fromarray(img).save(path, **save_args)


CLASSIFICATION_LAYOUTS = ("imagenet", "inat2017", "inat2018", "inat2019", "places205", "places365")


def write_classification_sets(out: str, num_train: int = 100, num_val: int = 40, size: int = 48, seed: int = 0,
                              datasets: Sequence[str] = CLASSIFICATION_LAYOUTS) -> dict[str, str]:
    """The same labelled scenes in the published layout of each classification dataset
    (see cls_transfer.datasets.LAYOUTS): imagenet, inat2017/2018/2019, places205, places365, or
    the subset `datasets`. iNaturalist category ids are deliberately sparse and listed out of order."""
    unknown = set(datasets) - set(CLASSIFICATION_LAYOUTS)
    if unknown:
        raise ValueError(f"unknown classification layouts {sorted(unknown)}; choose from {CLASSIFICATION_LAYOUTS}")
    rng = np.random.default_rng(seed)
    photos = _photo_backgrounds()
    splits = {"train": _labelled_scenes(rng, num_train, size, photos), "val": _labelled_scenes(rng, num_val, size, photos)}
    if "imagenet" in datasets:
        for split, scenes in splits.items():
            for i, (img, label) in enumerate(scenes):
                _save(os.path.join(out, "imagenet", split, CLASSES[label], f"{split}_{i:05d}.png"), img)
    for year, folder in (("2017", "train_val_images"), ("2018", "train_val2018"), ("2019", "train_val2019")):
        if f"inat{year}" not in datasets:
            continue
        root = os.path.join(out, f"inat{year}")
        cat_ids = [1000 + 7 * k for k in range(len(CLASSES))]
        categories = [{"id": cat_ids[k], "name": CLASSES[k], "supercategory": "Shapes"} for k in reversed(range(len(CLASSES)))]
        for split, scenes in splits.items():
            images: list[dict[str, Any]] = []
            annotations: list[dict[str, Any]] = []
            for i, (img, label) in enumerate(scenes):
                file_name = f"{folder}/Shapes/{CLASSES[label]}/{split}_{i:05d}.png"
                _save(os.path.join(root, file_name), img)
                images.append({"id": len(images) + 1, "file_name": file_name, "width": size, "height": size})
                annotations.append({"id": len(annotations) + 1, "image_id": images[-1]["id"], "category_id": cat_ids[label]})
            with open(os.path.join(root, f"{split}{year}.json"), "w") as f:
                json.dump({"images": images, "annotations": annotations, "categories": categories}, f)
    if "places205" in datasets:
        _write_places205(os.path.join(out, "places205"), splits)
    if "places365" in datasets:
        _write_places365(os.path.join(out, "places365"), splits)
    return {name: os.path.join(out, name) for name in datasets}


def _write_places205(root, splits):
    os.makedirs(os.path.join(root, "trainvalsplit_places205"), exist_ok=True)
    for split, scenes in splits.items():
        with open(os.path.join(root, "trainvalsplit_places205", f"{split}_places205.csv"), "w") as f:
            for i, (img, label) in enumerate(scenes):
                rel = f"{CLASSES[label][0]}/{CLASSES[label]}/{split}_{i:08d}.png"
                _save(os.path.join(root, "data/vision/torralba/deeplearning/images256", rel), img)
                f.write(f"{rel} {label}\n")


def _write_places365(root, splits):
    os.makedirs(root, exist_ok=True)
    with open(os.path.join(root, "categories_places365.txt"), "w") as f:
        f.writelines(f"/{c[0]}/{c} {k}\n" for k, c in enumerate(CLASSES))
    with open(os.path.join(root, "places365_train_standard.txt"), "w") as f:
        for i, (img, label) in enumerate(splits["train"]):
            rel = f"/{CLASSES[label][0]}/{CLASSES[label]}/{i + 1:08d}.png"
            _save(os.path.join(root, "data_256", rel.lstrip("/")), img)
            f.write(f"{rel} {label}\n")
    with open(os.path.join(root, "places365_val.txt"), "w") as f:
        for i, (img, label) in enumerate(splits["val"]):
            name = f"Places365_val_{i + 1:08d}.png"
            _save(os.path.join(root, "val_256", name), img)
            f.write(f"{name} {label}\n")


def _dense_scene(rng, size, photos, categories):
    """A detection / segmentation scene: 1-3 objects of `categories`. With DENSE_CLASSES, up to one
    classification object too, not annotated (background, as an unlisted object is in COCO and
    ADE20K); with CLASSES (the colour-coded set the tests' learning checks use), nothing else."""
    if categories != DENSE_CLASSES:
        return render_scene(rng, size, photos, categories=categories)
    return render_scene(rng, size, photos, categories=categories, distractors=CLASSES, max_distractors=1)


def write_ade20k(out: str, num_train: int = 40, num_val: int = 10, size: int = 64, seed: int = 0, image_suffix: str = ".jpg",
                 categories: Sequence[str] = DENSE_CLASSES) -> str:
    """Multi-object scenes (_dense_scene) in the ADE20K layout: OUT/ADEChallengeData2016/images/
    {training,validation}/ADE_*.jpg (or image_suffix) and annotations/.../ADE_*.png, label 0 =
    background ("other", ignored by the reduce_zero_label convention) and k + 1 for categories[k]."""
    rng = np.random.default_rng(seed)
    photos = _photo_backgrounds()
    root = os.path.join(out, "ADEChallengeData2016")
    for split, count, prefix in (("training", num_train, "ADE_train"), ("validation", num_val, "ADE_val")):
        for i in range(count):
            img, objects = _dense_scene(rng, size, photos, categories)
            label = np.zeros((size, size), dtype=np.uint8)
            for obj in objects:
                label[obj["mask"]] = categories.index(obj["category"]) + 1
            name = f"{prefix}_{i + 1:08d}"
            _save(os.path.join(root, "images", split, name + image_suffix), img, quality=95)
            _save(os.path.join(root, "annotations", split, name + ".png"), label)
    return root


def write_coco(out: str, num_train: int = 60, num_val: int = 20, size: int = 128, seed: int = 0,
               categories: Sequence[str] = DENSE_CLASSES) -> dict[str, tuple[str, str]]:
    """Multi-object scenes (_dense_scene) as COCO instances: OUT/{train,val}/*.jpg and OUT/annotations/
    instances_{train,val}.json with polygon masks of the visible parts, category ids 1..len(categories)."""
    import pycocotools.mask as mask_utils

    rng = np.random.default_rng(seed)
    photos = _photo_backgrounds()
    category_list = [{"id": k + 1, "name": c, "supercategory": "shape"} for k, c in enumerate(categories)]
    paths = {}
    for split, count in (("train", num_train), ("val", num_val)):
        images: list[dict[str, Any]] = []
        annotations: list[dict[str, Any]] = []
        for i in range(count):
            img, objects = _dense_scene(rng, size, photos, categories)
            file_name = f"{split}_{i:06d}.jpg"
            _save(os.path.join(out, split, file_name), img)
            images.append({"id": i + 1, "file_name": file_name, "height": size, "width": size})
            for obj in objects:
                rle = mask_utils.encode(np.asfortranarray(obj["mask"].astype(np.uint8)))
                x, y, w, h = (float(v) for v in mask_utils.toBbox(rle))
                segmentation = _mask_polygons(obj["mask"])
                if not segmentation:
                    continue
                annotations.append({"id": len(annotations) + 1, "image_id": i + 1,
                                    "category_id": categories.index(obj["category"]) + 1, "bbox": [x, y, w, h],
                                    "area": float(obj["mask"].sum()), "iscrowd": 0, "segmentation": segmentation})
        os.makedirs(os.path.join(out, "annotations"), exist_ok=True)
        paths[split] = os.path.join(out, "annotations", f"instances_{split}.json")
        with open(paths[split], "w") as f:
            json.dump({"images": images, "annotations": annotations, "categories": category_list}, f)
    return {split: (paths[split], os.path.join(out, split)) for split in paths}


def _mask_polygons(mask):
    """Polygons (COCO's flat x, y lists) of the visible part of an object, from its mask's contours."""
    import cv2

    contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    return [c.reshape(-1).astype(float).tolist() for c in contours if len(c) >= 3]
