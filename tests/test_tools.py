"""The command-line tools, run as a user runs them."""
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run(*args):
    result = subprocess.run([sys.executable, *args], capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout + result.stderr


@pytest.mark.slow
def test_pretrain_cli_writes_checkpoint_log_and_figure_then_resumes_and_visualize_reads_it(tmp_path):
    from reproduction.toy_data import write_image_folder

    data = write_image_folder(str(tmp_path / "data"), 48, size=80, seed=0)
    args = ("tools/pretrain.py", "--cfg", "pretrain/mae_vit_tiny_cpu.py", "--data", data, "--output-dir",
            str(tmp_path / "pretrain"), "--resume", "auto", "epochs=2", "batch_size=16", "vis_every=2")
    run(*args)
    pre = tmp_path / "pretrain"
    for name in ("checkpoint-last.pth", "log.csv", "summary.json", "figures/reconstruction-epoch0002.png"):
        assert (pre / name).is_file(), name
    images = sorted(str(p) for p in (tmp_path / "data" / "train").rglob("*.png"))[:2]
    out = run("tools/visualize_mae.py", str(pre / "checkpoint-last.pth"), *images, "--out", str(tmp_path / "v.png"))
    assert "loaded" in out and (tmp_path / "v.png").stat().st_size > 1000
    # a second run resumes the finished run instead of training again
    again = run(*args)
    assert "resumed from" in again and "epoch 1/2" not in again


def test_pretrain_cli_reports_bad_input():
    result = subprocess.run([sys.executable, "tools/pretrain.py", "--cfg", "pretrain/mae_vit_tiny_cpu.py",
                             "--data", "/nonexistent/images"], capture_output=True, text=True, cwd=ROOT)
    assert result.returncode != 0 and "/nonexistent/images' does not exist; expected an ImageNet-style folder" in result.stderr
    result = subprocess.run([sys.executable, "tools/pretrain.py", "--cfg", "no/such.py"], capture_output=True, text=True, cwd=ROOT)
    assert result.returncode != 0 and "neither a file nor a name under" in result.stderr
    result = subprocess.run([sys.executable, "tools/pretrain.py", "--cfg", "pretrain/mae_vit_tiny_cpu.py", "epoch=3"],
                            capture_output=True, text=True, cwd=ROOT)
    assert result.returncode != 0 and "unknown config key 'epoch'" in result.stderr


def test_toy_data_is_deterministic_for_a_seed_in_every_layout(tmp_path):
    import hashlib

    from reproduction.toy_data import write_ade20k, write_classification_sets, write_coco, write_image_folder

    def write(folder, seed):
        write_image_folder(str(folder / "pretrain"), 6, size=48, seed=seed)
        write_classification_sets(str(folder / "cls"), 5, 3, size=32, seed=seed)
        write_coco(str(folder / "coco"), 3, 2, size=64, seed=seed)
        write_ade20k(str(folder / "ade"), 3, 2, size=32, seed=seed)
        return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
                for p in sorted(folder.rglob("*")) if p.is_file()}

    first, again, other = write(tmp_path / "a", 0), write(tmp_path / "b", 0), write(tmp_path / "c", 1)
    assert first == again and len(first) > 60
    assert {k for k in first if first[k] != other.get(k)}  # another seed, other scenes
    subset = write_classification_sets(str(tmp_path / "d"), 4, 2, size=32, seed=0, datasets=("inat2018",))
    assert list(subset) == ["inat2018"] and sorted(os.listdir(tmp_path / "d")) == ["inat2018"]
    with pytest.raises(ValueError, match="unknown classification layouts"):
        write_classification_sets(str(tmp_path / "e"), datasets=("cifar10",))


def test_dense_tasks_have_their_own_categories_which_colour_alone_does_not_tell_apart(tmp_path):
    """The COCO / ADE20K sets' categories are not the classification classes, and a nearest-mean-colour
    rule that tells the colour-coded classification objects apart (99% measured) gets far fewer of
    the dense categories' objects right (75-80% measured): the categories sharing a colour family
    differ in shape and texture only."""
    import json

    import numpy as np

    from reproduction.toy_data import CLASSES, DENSE_CLASSES, _photo_backgrounds, render_scene, write_coco

    assert not set(CLASSES) & set(DENSE_CLASSES)
    coco = write_coco(str(tmp_path / "coco"), 4, 1, size=64, seed=0)
    assert {c["name"] for c in json.load(open(coco["train"][0]))["categories"]} == set(DENSE_CLASSES)

    def nearest_colour_accuracy(categories, distractors):
        rng, photos, colours, labels = np.random.default_rng(0), _photo_backgrounds(), [], []
        for _ in range(100):
            img, objects = render_scene(rng, 64, photos, categories=categories, distractors=distractors, max_distractors=1)
            for obj in objects:
                colours.append(img[obj["mask"]].astype(float).mean(0))
                labels.append(categories.index(obj["category"]))
        colours, labels = np.array(colours), np.array(labels)
        assert set(labels) == set(range(len(categories)))
        centroids = {k: colours[labels == k].mean(0) for k in set(labels)}
        nearest = [min(centroids, key=lambda k: np.linalg.norm(c - centroids[k])) for c in colours]
        return np.mean(np.array(nearest) == labels)

    assert nearest_colour_accuracy(CLASSES, DENSE_CLASSES) > 0.95
    assert nearest_colour_accuracy(DENSE_CLASSES, CLASSES) < 0.85


def test_pre_training_images_hold_both_kinds_of_object_and_a_held_out_split(tmp_path):
    from reproduction.toy_data import CLASSES, write_image_folder

    train = write_image_folder(str(tmp_path), 40, size=48, seed=0, num_val=10)
    assert train == str(tmp_path / "train")
    counts = {split: sum(len(os.listdir(tmp_path / split / c)) for c in os.listdir(tmp_path / split))
              for split in ("train", "val")}
    assert counts == {"train": 40, "val": 10}
    assert set(os.listdir(tmp_path / "train")) <= set(CLASSES)
