import json
import os

import pytest

from cls_transfer.datasets import DATASETS, LAYOUTS, build_dataset
from reproduction.toy_data import CLASSES, write_classification_sets


@pytest.fixture(scope="module")
def sets(tmp_path_factory):
    return write_classification_sets(str(tmp_path_factory.mktemp("cls")), num_train=12, num_val=6, size=32, seed=3)


@pytest.mark.parametrize("name", DATASETS)
def test_each_layout_reads_with_consistent_labels(sets, name):
    train, val = build_dataset(name, sets[name], "train"), build_dataset(name, sets[name], "val")
    assert len(train) == 12 and len(val) == 6
    assert train.classes == val.classes and len(train.classes) == len(CLASSES)
    reference = build_dataset("imagenet", sets["imagenet"], "train")
    # the same scenes in every layout: the class *name* of each sample agrees with the ImageNet layout
    names = [train.classes[label].split("/")[-1] for label in train.targets]
    assert sorted(names) == sorted(reference.classes[label] for label in reference.targets)
    img, label = train[0]
    assert img.size == (32, 32) and 0 <= label < len(train.classes)


def test_inaturalist_maps_sparse_category_ids_by_sorted_id(sets):
    root = sets["inat2018"]
    with open(os.path.join(root, "val2018.json")) as f:
        meta = json.load(f)
    ds = build_dataset("inat2018", root, "val")
    ids = sorted(c["id"] for c in meta["categories"])
    first = meta["annotations"][0]
    assert ds.targets[0] == ids.index(first["category_id"])
    assert ds.classes[ds.targets[0]] == next(c["name"] for c in meta["categories"] if c["id"] == first["category_id"])


def test_missing_files_name_the_expected_layout(tmp_path, sets):
    with pytest.raises(FileNotFoundError, match="does not exist; expected layout: ROOT/train2017.json"):
        build_dataset("inat2017", str(tmp_path / "nowhere"), "train")
    (tmp_path / "places").mkdir()
    with pytest.raises(FileNotFoundError, match=r"missing .*categories_places365.txt; expected layout"):
        build_dataset("places365", str(tmp_path / "places"), "train")
    with pytest.raises(ValueError, match="unknown dataset 'cifar'"):
        build_dataset("cifar", str(tmp_path), "train")
    assert set(LAYOUTS) == set(DATASETS)


def test_unreadable_images_fail_with_path_or_are_skipped(sets):
    ds = build_dataset("places205", sets["places205"], "train")
    path = ds.samples[0][0]
    with open(path, "wb") as f:
        f.write(b"broken")
    with pytest.raises(Exception, match=f"cannot read image {path}"):
        ds[0]
    skipping = build_dataset("places205", sets["places205"], "train", bad_images="skip")
    assert path in str(skipping[0])
