"""The datasets of a detection run in Detectron2's catalog: COCO-format files registered by name, and
the checks on their json that Detectron2 would only fail late, from which the class count comes."""
import json
import os
from collections.abc import Sequence
from typing import Any

from detectron2.data import DatasetCatalog, MetadataCatalog
from detectron2.data.datasets import register_coco_instances

from common.errors import UserError

COCO_LAYOUT = "DATA_ROOT/coco/{train2017,val2017}/*.jpg and DATA_ROOT/coco/annotations/instances_{train,val}2017.json"


def register_datasets(specs: Sequence[str]) -> None:
    """--dataset NAME=COCO_JSON:IMAGES specs into Detectron2's catalog, once a process (train() builds
    the config again)."""
    for spec in specs:
        name, _, paths = spec.partition("=")
        json_file, _, image_root = paths.partition(":")
        if not (name and json_file and image_root):
            raise UserError(f"--dataset {spec!r} is not NAME=COCO_JSON:IMAGE_FOLDER")
        for path in (json_file, image_root):
            if not os.path.exists(path):
                raise FileNotFoundError(f"--dataset {name}: {path} does not exist (expected NAME=COCO_JSON:IMAGE_FOLDER)")
        if name not in DatasetCatalog.list():
            register_coco_instances(name, {}, json_file, image_root)


def coco_categories(name: str, polygon_masks: bool) -> tuple[list[tuple[int, str]], str]:
    """The (id, name) categories of a registered COCO-format dataset, after the checks Detectron2
    would otherwise fail on late (at the first batch, or in COCOEvaluator after the whole run)."""
    if name not in DatasetCatalog.list():
        raise UserError(f"dataset {name!r} is not registered: register it with --dataset {name}=COCO_JSON:IMAGES, "
                        f"or use one of Detectron2's builtin names (e.g. coco_2017_train)")
    meta = MetadataCatalog.get(name)
    json_file = meta.get("json_file")
    for path in (json_file, meta.get("image_root")):
        if path and not os.path.exists(path):
            raise FileNotFoundError(f"dataset {name}: {path} does not exist; expected {COCO_LAYOUT} "
                                    f"(--data-root or $DETECTRON2_DATASETS), or register one with --dataset")
    if not json_file:
        raise UserError(f"dataset {name!r} has no COCO json (json_file) in its metadata; register a COCO-format "
                        f"dataset with --dataset NAME=COCO_JSON:IMAGES")
    try:
        with open(json_file) as f:
            data = json.load(f)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise UserError(f"dataset {name}: {json_file} is not valid JSON ({e})") from e
    for key in ("images", "annotations", "categories"):
        if not isinstance(data.get(key), list) or (key != "annotations" and not data[key]):
            raise UserError(f"dataset {name}: {json_file} has no {key!r} list; a COCO instances json needs "
                            f"'images', 'annotations' and 'categories'")
    ids = {c["id"] for c in data["categories"]}
    for ann in data["annotations"]:
        if ann.get("category_id") not in ids:
            raise UserError(f"dataset {name}: {json_file} annotation {ann.get('id')} has category_id "
                            f"{ann.get('category_id')}, which its 'categories' do not list")
        if polygon_masks and not ann.get("iscrowd", 0) and isinstance(ann.get("segmentation"), dict):
            raise UserError(f"dataset {name}: {json_file} annotation {ann.get('id')} (image {ann.get('image_id')}) "
                            f"is an RLE mask with iscrowd=0, which the polygon mask format cannot read: convert "
                            f"it to polygons, or add dataloader.train.mapper.instance_mask_format=bitmask")
    return sorted((c["id"], c["name"]) for c in data["categories"]), json_file


def set_num_classes(cfg: Any) -> None:
    """The class count comes from the data; train and test datasets must have the same categories."""
    mapper = cfg.dataloader.train.mapper
    polygons = mapper.get("use_instance_mask", False) and mapper.get("instance_mask_format", "polygon") == "polygon"
    train_names, test_names = _names(cfg.dataloader.train.dataset.names), _names(cfg.dataloader.test.dataset.names)
    found = {name: coco_categories(name, polygons and name in train_names) for name in dict.fromkeys(train_names + test_names)}
    (first, (categories, first_json)), *others = found.items()
    for name, (other, json_file) in others:
        if other != categories:
            differ = sorted(set(categories) ^ set(other))[:4]
            raise UserError(f"datasets {first} ({first_json}, {len(categories)} categories) and {name} ({json_file}, "
                            f"{len(other)} categories) have different categories, e.g. {differ}: train and "
                            f"evaluate on datasets with the same 'categories'")
    if cfg.model.roi_heads.num_classes != len(categories):
        print(f"num_classes: {len(categories)}, the categories of dataset {first} (the config said "
              f"{cfg.model.roi_heads.num_classes})")
        cfg.model.roi_heads.num_classes = len(categories)


def _names(names: str | Sequence[str]) -> list[str]:
    return [names] if isinstance(names, str) else list(names)
