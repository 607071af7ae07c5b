"""Classification datasets in their published layouts (LAYOUTS), with `classes` on each."""
import json
import os
from collections.abc import Callable
from typing import Any

from torch.utils.data import Dataset

from common.errors import UserError
from common.gpu_data import GpuTransform, read_encoded
from common.images import IMG_EXTENSIONS, BadImageError, read_image

LAYOUTS = {
    "imagenet": "ROOT/{train,val}/CLASS/IMAGE",
    "inat2017": "ROOT/train2017.json, ROOT/val2017.json; images at each `file_name`, relative to ROOT",
    "inat2018": "ROOT/train2018.json, ROOT/val2018.json; images at each `file_name`, relative to ROOT",
    "inat2019": "ROOT/train2019.json, ROOT/val2019.json; images at each `file_name`, relative to ROOT",
    "places205": "ROOT/trainvalsplit_places205/{train,val}_places205.csv ('PATH LABEL' lines); "
                 "images under ROOT/data/vision/torralba/deeplearning/images256/",
    "places365": "ROOT/categories_places365.txt, ROOT/places365_train_standard.txt, ROOT/places365_val.txt; "
                 "images under ROOT/data_256/ and ROOT/val_256/ (or data_large/ and val_large/)",
}
DATASETS = tuple(LAYOUTS)
SPLITS = ("train", "val")


class ClassificationDataset(Dataset):
    """(path, label) samples with `classes`; bad_images "skip" yields BadImageError instances that
    the loader's collate counts (the pre-training policy), "fail" raises with the path. With a
    common.gpu_data.GpuTransform (data_backend="gpu") the images stay encoded, their views drawn."""

    def __init__(self, samples: list[tuple[str, int]], classes: list[str], transform: Callable[[Any], Any] | None = None,
                 bad_images: str = "fail") -> None:
        if bad_images not in ("fail", "skip"):
            raise ValueError(f"bad_images must be 'fail' or 'skip', got {bad_images!r}")
        self.samples, self.classes, self.transform, self.bad_images = samples, classes, transform, bad_images

    @property
    def targets(self) -> list[int]:
        return [label for _, label in self.samples]

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> tuple[Any, int] | BadImageError:
        path, label = self.samples[index]
        try:
            img = read_encoded(path) if isinstance(self.transform, GpuTransform) else read_image(path)
        except BadImageError as e:
            if self.bad_images == "fail":
                raise
            return e
        return (self.transform(img) if self.transform else img), label


def build_dataset(name: str, root: str, split: str, transform: Callable[[Any], Any] | None = None,
                  bad_images: str = "fail") -> ClassificationDataset:
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; choose from {DATASETS}")
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    if not os.path.isdir(root):
        raise FileNotFoundError(f"{name} root {root!r} does not exist; expected layout: {LAYOUTS[name]}")
    reader = {"imagenet": _imagenet, "places205": _places205, "places365": _places365}.get(name, _inaturalist)
    samples, classes = reader(name, root, split)
    if not samples:
        raise FileNotFoundError(f"{name} {split} split under {root!r} has no samples; expected layout: {LAYOUTS[name]}")
    return ClassificationDataset(samples, classes, transform, bad_images)


def _need(name: str, path: str) -> str:
    if not os.path.exists(path):
        raise FileNotFoundError(f"{name}: missing {path}; expected layout: {LAYOUTS[name]}")
    return path


def _imagenet(name: str, root: str, split: str) -> tuple[list[tuple[str, int]], list[str]]:
    """Classes are the train folder's class folders (sorted), so train and val labels agree."""
    train_folder = _need(name, os.path.join(root, "train"))
    classes = sorted(d.name for d in os.scandir(train_folder) if d.is_dir())
    folder = _need(name, os.path.join(root, split))
    extra = sorted({d.name for d in os.scandir(folder) if d.is_dir()} - set(classes))
    if extra:
        raise ValueError(f"{name}: class folders in {folder} that train/ does not have: {extra[:5]}")
    samples = [
        (os.path.join(dirpath, f), label)
        for label, cls in enumerate(classes)
        for dirpath, _, files in sorted(os.walk(os.path.join(folder, cls), followlinks=True))
        for f in sorted(files) if f.lower().endswith(IMG_EXTENSIONS)
    ]
    return samples, classes


def _inaturalist(name: str, root: str, split: str) -> tuple[list[tuple[str, int]], list[str]]:
    """Category ids -> labels 0..C-1 by sorted id, from the train json, so train and val agree."""
    year = name[len("inat"):]
    with open(_need(name, os.path.join(root, f"train{year}.json"))) as f:
        categories = json.load(f)["categories"]
    categories = sorted(categories, key=lambda c: c["id"])
    label_of = {c["id"]: i for i, c in enumerate(categories)}
    with open(_need(name, os.path.join(root, f"{split}{year}.json"))) as f:
        meta = json.load(f)
    file_of = {img["id"]: img["file_name"] for img in meta["images"]}
    samples: list[tuple[str, int]] = []
    for ann in meta["annotations"]:
        if ann["category_id"] not in label_of:
            raise UserError(f"{name}: {os.path.join(root, f'{split}{year}.json')} annotation {ann.get('id')} has "
                            f"category_id {ann['category_id']}, which is not among the {len(label_of)} categories "
                            f"of train{year}.json")
        if ann["image_id"] not in file_of:
            raise UserError(f"{name}: {os.path.join(root, f'{split}{year}.json')} annotation {ann.get('id')} refers "
                            f"to image_id {ann['image_id']}, which its 'images' do not list")
        samples.append((os.path.join(root, file_of[ann["image_id"]]), label_of[ann["category_id"]]))
    return samples, [c["name"] for c in categories]


def _read_list(name: str, path: str) -> list[tuple[str, int]]:
    """`PATH LABEL` lines; the path may hold spaces (the label is the last word)."""
    rows: list[tuple[str, int]] = []
    with open(_need(name, path)) as f:
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            item, _, label = line.strip().rpartition(" ")
            if not item or not label.lstrip("-").isdigit():
                raise UserError(f"{name}: {path} line {number} is not 'PATH LABEL': {line.strip()!r}")
            rows.append((item.strip(), int(label)))
    return rows


def _check_labels(name: str, path: str, rows: list[tuple[str, int]], classes: list[str]) -> None:
    for item, label in rows:
        if not 0 <= label < len(classes):
            raise UserError(f"{name}: {path} gives {item} the label {label}, outside the {len(classes)} classes "
                            f"(0-{len(classes) - 1}) of the train split")


def _places205(name: str, root: str, split: str) -> tuple[list[tuple[str, int]], list[str]]:
    images = os.path.join(root, "data", "vision", "torralba", "deeplearning", "images256")
    list_file = os.path.join(root, "trainvalsplit_places205", f"{split}_places205.csv")
    rows = _read_list(name, list_file)
    train_rows = rows if split == "train" else _read_list(name, os.path.join(root, "trainvalsplit_places205", "train_places205.csv"))
    names: dict[int, str] = {}
    for path, label in train_rows:  # the class name is the folder below the letter, e.g. a/abbey
        if label < 0:
            raise UserError(f"{name}: the train list gives {path} the negative label {label}")
        names.setdefault(label, "/".join(path.split("/")[1:-1]))
    classes = [names.get(i, str(i)) for i in range(max(names, default=-1) + 1)]
    _check_labels(name, list_file, rows, classes)
    return [(os.path.join(images, p.lstrip("/")), label) for p, label in rows], classes


def _places365(name: str, root: str, split: str) -> tuple[list[tuple[str, int]], list[str]]:
    categories = _read_list(name, os.path.join(root, "categories_places365.txt"))
    classes = [c.lstrip("/") for c, _ in sorted(categories, key=lambda c: c[1])]
    list_file = os.path.join(root, "places365_train_standard.txt" if split == "train" else "places365_val.txt")
    rows = _read_list(name, list_file)
    _check_labels(name, list_file, rows, classes)
    small, large = ("data_256", "data_large") if split == "train" else ("val_256", "val_large")
    folder = os.path.join(root, small) if os.path.isdir(os.path.join(root, small)) else os.path.join(root, large)
    _need(name, folder)
    return [(os.path.join(folder, p.lstrip("/")), label) for p, label in rows], classes
