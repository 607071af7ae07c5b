"""A user's own data, settings and interruptions: the right result, or one line `error: ...` with
exit code 2 that names the culprit (pre-training, classification, reconstructions, checkpoints)."""
import argparse
import csv
import os
import resource
import signal
import subprocess
import sys
import time

import cv2
import numpy as np
import pytest
import torch
from conftest import ROOT, TINY_ENCODER, images_with_one_broken_file, user_error
from PIL import Image
from timm.models.vision_transformer import VisionTransformer

from cls_transfer.config import load_cls_config
from cls_transfer.datasets import build_dataset
from cls_transfer.engine import ClsTrainer
from common.checkpoint_files import load_file, save_file
from common.errors import UserError
from common.images import read_image
from pretrain import build_mae
from pretrain.config import PretrainConfig
from pretrain.data import list_images
from pretrain.engine import Trainer
from reproduction.toy_data import write_classification_sets, write_image_folder

TINY_MAE = dict(patch_size=8, depth=2, embed_dim=64, num_heads=4, decoder_embed_dim=32, decoder_depth=1,
                decoder_num_heads=4)
TINY_ARGS = ["input_size=32", "batch_size=4", "num_workers=0", "vis_every=0", "save_every=1", "precision='fp32'",
             "warmup_epochs=1"] + [f"model_overrides.{k}={v!r}" for k, v in TINY_MAE.items()]


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    root = tmp_path_factory.mktemp("images")
    write_image_folder(str(root), num_images=8, size=40, seed=1)
    return str(root)


@pytest.fixture(scope="module")
def pretrained(images, tmp_path_factory):
    """A one-epoch tiny pre-training run: its checkpoint-last.pth."""
    out = tmp_path_factory.mktemp("pretrained")
    Trainer(PretrainConfig(model="mae_vit_tiny_patch16", model_overrides=TINY_MAE, input_size=32, epochs=1,
                           warmup_epochs=1, batch_size=4, num_workers=0, vis_every=0, precision="fp32",
                           data=images, output_dir=str(out))).train()
    return str(out / "checkpoint-last.pth")


def pretrain_cli(images, out, *extra):
    return ("pretrain.py", "--cfg", "pretrain/mae_vit_tiny_cpu.py", "--data", images, "--output-dir", out, *TINY_ARGS,
            *extra)


# -- overrides, checkpoints, interruptions (pre-training) ---------------------------------------
def test_unknown_override_keys_are_refused_with_close_matches(images, tmp_path):
    line = user_error(*pretrain_cli(images, tmp_path, "model_overrides.decoder_dept=3"))
    assert "unknown model_overrides argument 'decoder_dept'" in line and "'decoder_depth'" in line
    with pytest.raises(UserError, match="unknown config key 'epoch'; did you mean 'epochs'"):
        load_cls_config(os.path.join(ROOT, "configs/cls/tiny_cpu.py"), ["epoch=3"])
    with pytest.raises(UserError, match="unknown backbone_overrides argument 'dept'; did you mean 'depth'"):
        load_cls_config(os.path.join(ROOT, "configs/cls/tiny_cpu.py"), ["backbone_overrides.dept=3"])
    with pytest.raises(UserError, match="unknown backbone_overrides argument 'patch'; did you mean 'patch_size'"):
        load_cls_config(os.path.join(ROOT, "configs/cls/tiny_cpu.py"), ["backbone_overrides={'patch': 8}"])
    assert user_error("pretrain.py", "--cfg").startswith("error: argument --cfg: expected one argument")
    args = pretrain_cli(images, tmp_path, "epoch=3", "--debug")
    debug = subprocess.run([sys.executable, os.path.join(ROOT, "tools", args[0]), *map(str, args[1:])],
                           capture_output=True, text=True, cwd=ROOT)
    assert debug.returncode == 1 and "Traceback" in debug.stderr and "UserError: unknown config key" in debug.stderr


def test_wrong_or_truncated_checkpoints_to_resume_are_refused_and_the_run_left_intact(images, pretrained, tmp_path):
    before = open(pretrained, "rb").read()
    other = user_error(*pretrain_cli(images, tmp_path, "model_overrides.depth=3", "--resume", pretrained))
    assert f"{pretrained} was written for another model" in other and "blocks.2" in other
    truncated = tmp_path / "truncated.pth"
    truncated.write_bytes(before[: len(before) // 2])
    line = user_error(*pretrain_cli(images, tmp_path, "--resume", truncated))
    assert f"cannot load checkpoint {truncated} (truncated" in line
    classifier = tmp_path / "cls.pth"
    torch.save({"model": {}, "classes": ["a"]}, classifier)
    assert "is not a checkpoint of tools/pretrain.py" in user_error(*pretrain_cli(images, tmp_path, "--resume", classifier))
    assert open(pretrained, "rb").read() == before and load_file(pretrained)["epoch"] == 1


def test_a_full_disk_while_saving_is_one_line_and_keeps_the_last_checkpoint(images, pretrained, tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    last = run / "checkpoint-last.pth"
    last.write_bytes(open(pretrained, "rb").read())
    limit = os.path.getsize(pretrained) // 2  # every file the run writes may grow to this size, no more

    def small_disk():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails (EFBIG) instead of killing
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    result = subprocess.run([sys.executable, os.path.join(ROOT, "tools", "pretrain.py"),
                             *map(str, pretrain_cli(images, run, "epochs=2", "--resume", "auto")[1:])],
                            capture_output=True, text=True, cwd=ROOT, preexec_fn=small_disk)
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr[-3000:]
    line = result.stderr.strip().splitlines()[-1]
    assert line.startswith(f"error: cannot write checkpoint {last}: file too large;"), line
    assert "free space there, then continue with --resume auto" in line
    assert load_file(str(last))["epoch"] == 1 and sorted(os.listdir(run)) == ["checkpoint-last.pth", "log.csv", "tensorboard"]


def test_checkpoints_get_a_normal_file_mode(tmp_path):
    save_file({"x": torch.zeros(1)}, str(tmp_path / "c.pth"))
    umask = os.umask(0)
    os.umask(umask)
    assert os.stat(tmp_path / "c.pth").st_mode & 0o777 == 0o666 & ~umask


def test_ctrl_c_says_which_checkpoint_resume_continues_from(images, tmp_path):
    args = pretrain_cli(images, tmp_path, "epochs=1000")
    # SIGINT as in a terminal, also where the suite itself runs in the background (which ignores it)
    proc = subprocess.Popen([sys.executable, os.path.join(ROOT, "tools", args[0]), *map(str, args[1:])],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, cwd=ROOT,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    last = tmp_path / "checkpoint-last.pth"
    deadline = time.time() + 300
    # the moment: while a checkpoint after the first is being written (its temporary file exists)
    while not (last.exists() and any(name.startswith(".tmp-") for name in os.listdir(tmp_path))):
        assert proc.poll() is None and time.time() < deadline, "no checkpoint write seen"
        time.sleep(0.001)
    proc.send_signal(signal.SIGINT)
    stderr = proc.communicate(timeout=120)[1]
    assert proc.returncode == 130 and "Traceback" not in stderr, stderr[-3000:]
    assert stderr.strip().splitlines()[-1] == f"error: interrupted (Ctrl-C); --resume auto continues from {last}"
    with open(tmp_path / "log.csv") as f:
        epochs_logged = len(list(csv.DictReader(f)))
    # the interrupted write completed: the checkpoint is of the last epoch logged (logged before it is saved)
    assert load_file(str(last))["epoch"] == epochs_logged >= 1


# -- images and lists -----------------------------------------------------------------------------
def test_images_of_every_mode_read_as_their_8_bit_rgb(tmp_path):
    import skimage.data

    photo = skimage.data.astronaut()[::4, ::4]  # a real photo, 128 x 128 RGB
    gray = np.asarray(Image.fromarray(photo).convert("L"))
    cv2.imwrite(str(tmp_path / "rgb16.png"), cv2.cvtColor(photo.astype(np.uint16) * 257, cv2.COLOR_RGB2BGR))
    Image.fromarray(gray.astype(np.uint16) * 257).save(tmp_path / "gray16.png")
    Image.fromarray(gray.astype(np.float32) / 255).save(tmp_path / "float.tiff")
    Image.fromarray(photo).convert("CMYK").save(tmp_path / "cmyk.jpg", quality=100)
    palette = Image.fromarray(photo).convert("P")
    palette.info["transparency"] = 0
    palette.save(tmp_path / "palette.png", transparency=0)
    assert Image.open(tmp_path / "gray16.png").mode.startswith("I")  # a real 16-bit file
    assert cv2.imread(str(tmp_path / "rgb16.png"), cv2.IMREAD_UNCHANGED).dtype == np.uint16

    def pixels(name):
        img = read_image(str(tmp_path / name))
        assert img.mode == "RGB" and img.size == (128, 128)
        return np.asarray(img).astype(int)

    assert np.abs(pixels("rgb16.png") - photo).max() <= 1
    for name in ("gray16.png", "float.tiff"):
        assert np.abs(pixels(name) - gray[..., None]).max() <= 1, name
    assert np.abs(pixels("cmyk.jpg") - photo).mean() < 4
    seen, indexes = pixels("palette.png"), Image.open(tmp_path / "palette.png")
    colours = np.asarray(indexes.convert("RGBA"))[..., :3]  # the palette's colours, transparency left aside
    transparent = np.asarray(indexes) == 0
    assert transparent.any() and (seen[transparent] == 255).all() and (seen[~transparent] == colours[~transparent]).all()


def test_list_files_keep_paths_with_spaces(tmp_path):
    (tmp_path / "my photos").mkdir()
    for name in ("cat 1.jpg", "dog.jpg"):
        Image.new("RGB", (8, 8)).save(tmp_path / "my photos" / name)
    listing = tmp_path / "list.txt"
    listing.write_text("my photos/cat 1.jpg\nmy photos/dog.jpg 7\n")
    assert list_images(str(listing)) == [str(tmp_path / "my photos" / "cat 1.jpg"), str(tmp_path / "my photos" / "dog.jpg")]


def test_bad_images_under_skip_are_counted_once_and_an_unreadable_batch_stops(images, tmp_path):
    data = tmp_path / "data"
    broken = images_with_one_broken_file(data)
    cfg = PretrainConfig(model="mae_vit_tiny_patch16", model_overrides=TINY_MAE, input_size=32, epochs=3,
                         warmup_epochs=1, batch_size=4, num_workers=0, vis_every=0, precision="fp32",
                         data=str(data), output_dir=str(tmp_path / "skip"), bad_images="skip")
    summary = Trainer(cfg).train()
    assert len(summary["skipped_images"]) == 1 and "broken.png" in summary["skipped_images"][0]
    unreadable = tmp_path / "unreadable" / "train" / "c"
    unreadable.mkdir(parents=True)
    for i in range(8):
        (unreadable / f"{i}.jpg").write_bytes(b"no image")
    line = user_error(*pretrain_cli(str(tmp_path / "unreadable"), tmp_path / "out", "bad_images='skip'"))
    assert "epoch 1, batch 0: none of its 4 images could be read" in line and "unreadable/train/c/" in line
    # raised in a DataLoader worker, which hands the exception over with its traceback as text
    line = user_error(*pretrain_cli(str(data), tmp_path / "fail", "num_workers=1"))
    assert line.startswith(f"error: cannot read image {broken}")


def test_visualize_refuses_a_classification_checkpoint(images, tmp_path):
    path = tmp_path / "cls.pth"
    classifier = build_mae("mae_vit_tiny_patch16", **TINY_ENCODER)  # the encoder's keys, no decoder
    torch.save({"model": {k: v for k, v in classifier.state_dict().items() if not k.startswith(("decoder", "mask"))},
                "classes": ["a", "b"]}, path)
    image = next(p for p in list_images(images))
    line = user_error("visualize_mae.py", path, image, "--out", tmp_path / "v.png")
    assert f"{path} is a classification checkpoint (tools/train_cls.py)" in line


# -- classification -------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def cls_sets(tmp_path_factory):
    return write_classification_sets(str(tmp_path_factory.mktemp("cls")), num_train=16, num_val=8, size=32, seed=3,
                                     datasets=("imagenet", "places365", "inat2018"))


@pytest.fixture(scope="module")
def mae_encoder(tmp_path_factory):
    path = tmp_path_factory.mktemp("mae") / "mae.pth"
    torch.save({"model": build_mae("mae_vit_tiny_patch16", img_size=32, **TINY_ENCODER, decoder_depth=1).state_dict()}, path)
    return str(path)


def cls_cli(cls_sets, out, *extra):
    return ("train_cls.py", "--cfg", "cls/tiny_cpu.py", "--data-root", cls_sets["imagenet"], "--output-dir", out,
            "num_workers=0", "input_size=32", "batch_size=8", "epochs=1", *extra)


def test_transfer_without_a_checkpoint_to_start_from_is_refused(cls_sets, tmp_path):
    line = user_error(*cls_cli(cls_sets, tmp_path, "--resume", "auto"))
    assert "no initial checkpoint was given, and --resume auto found no" in line and "checkpoint-last.pth" in line
    assert "--init none" in line and not (tmp_path / "results.csv").exists()


def test_eval_only_records_the_evaluated_run_next_to_it(cls_sets, mae_encoder, tmp_path):
    overrides = [f"{k}={v!r}" for k, v in dict(data_root=cls_sets["imagenet"], output_dir=str(tmp_path / "run"),
                                               init=mae_encoder, num_workers=0, input_size=32, batch_size=8,
                                               epochs=1).items()]
    ClsTrainer(load_cls_config(os.path.join(ROOT, "configs/cls/tiny_cpu.py"), overrides)).train()
    checkpoint = tmp_path / "run" / "checkpoint-last.pth"
    result = subprocess.run([sys.executable, os.path.join(ROOT, "tools", "train_cls.py"), "--cfg", "cls/tiny_cpu.py",
                             "--data-root", cls_sets["imagenet"], "--eval-only", str(checkpoint), "num_workers=0",
                             "input_size=32", "batch_size=8"], capture_output=True, text=True, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    with open(tmp_path / "run" / "results.csv") as f:
        trained, evaluated = list(csv.DictReader(f))
    assert evaluated["pretrain_checkpoint"] == trained["pretrain_checkpoint"] == mae_encoder
    assert evaluated["run_dir"] == trained["run_dir"] == str(tmp_path / "run")
    assert evaluated["top1"] == trained["top1"] and not (tmp_path / "results").exists()
    # a bare --eval-only evaluates the output dir's last checkpoint
    result = subprocess.run([sys.executable, os.path.join(ROOT, "tools", "train_cls.py"), "--cfg", "cls/tiny_cpu.py",
                             "--data-root", cls_sets["imagenet"], "--output-dir", str(tmp_path / "run"),
                             "num_workers=0", "input_size=32", "batch_size=8", "--eval-only"], capture_output=True, text=True,
                            cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    with open(tmp_path / "run" / "results.csv") as f:
        *_, again = list(csv.DictReader(f))
    assert again["top1"] == trained["top1"] and again["run_dir"] == str(tmp_path / "run")
    line = user_error(*cls_cli(cls_sets, tmp_path / "empty", "--eval-only"))
    assert "--eval-only found no checkpoint to evaluate" in line and "checkpoint-last.pth" in line


def test_labels_outside_the_class_list_name_the_list_file(cls_sets, tmp_path):
    root = cls_sets["places365"]
    val = os.path.join(root, "places365_val.txt")
    lines = open(val).read().splitlines()
    edited = tmp_path / "edited"  # the same set, with one edited list file
    edited.mkdir()
    for name in os.listdir(root):
        os.symlink(os.path.join(root, name), edited / name)
    os.remove(edited / "places365_val.txt")
    first_path = lines[0].rpartition(" ")[0]
    (edited / "places365_val.txt").write_text("\n".join([f"{first_path} 99", *lines[1:]]) + "\n")
    with pytest.raises(UserError, match=rf"{edited}/places365_val.txt gives {first_path} the label 99, outside the 5 classes"):
        build_dataset("places365", str(edited), "val")


def test_inaturalist_categories_outside_the_train_list_name_the_json(cls_sets, tmp_path):
    import json
    import shutil

    root = tmp_path / "inat2018"
    shutil.copytree(cls_sets["inat2018"], root, symlinks=True)
    with open(root / "val2018.json") as f:
        val = json.load(f)
    val["annotations"][0]["category_id"] = 999
    (root / "val2018.json").write_text(json.dumps(val))
    with pytest.raises(UserError, match=rf"{root}/val2018.json annotation \S+ has category_id 999, which is not among"):
        build_dataset("inat2018", str(root), "val")


def test_classification_resumes_only_its_own_checkpoints(cls_sets, pretrained, tmp_path):
    line = user_error(*cls_cli(cls_sets, tmp_path, "--resume", pretrained, "backbone_overrides={'patch_size': 8, 'depth': 2}"))
    assert f"{pretrained} is not a checkpoint of tools/train_cls.py; to start from an MAE checkpoint pass it as --init" in line


def cut_short(path):
    path.write_bytes(path.read_bytes()[: os.path.getsize(path) // 2])


def test_resume_auto_passes_over_a_truncated_last_checkpoint(images, tmp_path):
    Trainer(PretrainConfig(model="mae_vit_tiny_patch16", model_overrides=TINY_MAE, input_size=32, epochs=3,
                           warmup_epochs=1, batch_size=4, num_workers=0, vis_every=0, precision="fp32", save_every=1,
                           data=images, output_dir=str(tmp_path))).train()
    last, numbered = tmp_path / "checkpoint-last.pth", [tmp_path / f"checkpoint-{e:04d}.pth" for e in (1, 2, 3)]
    cut_short(last)  # as by an interrupted copy
    args = pretrain_cli(images, tmp_path, "epochs=4", "--resume", "auto")
    result = subprocess.run([sys.executable, os.path.join(ROOT, "tools", args[0]), *map(str, args[1:])],
                            capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0, result.stderr[-3000:]
    said = [line for line in result.stdout.splitlines() if "--resume auto continues from" in line]
    assert len(said) == 1 and f"cannot load checkpoint {last} (truncated" in said[0], result.stdout[-3000:]
    assert said[0].endswith(f"continues from {numbered[2]}, the newest numbered checkpoint that loads")
    assert f"resumed from {numbered[2]} at epoch 3" in result.stdout
    assert [load_file(str(p))["epoch"] for p in (*numbered, last, tmp_path / "checkpoint-0004.pth")] == [1, 2, 3, 4, 4]
    # no numbered checkpoint that loads: the run stops, as before, on the last one
    for path in tmp_path.glob("checkpoint-*.pth"):
        cut_short(path)
    assert f"cannot load checkpoint {last} (truncated" in user_error(*args)


# -- official fine-tuned checkpoints (--eval-only) --------------------------------------------------
def official_finetuned(path, num_classes, without=()):
    """A checkpoint as the official main_finetune.py writes it: {'model', 'args': Namespace}, the model
    being timm's VisionTransformer with global pooling (fc_norm), which the official models_vit.py extends
    (the same names for ViT-B/L/H). -> the timm model."""
    model = VisionTransformer(img_size=32, patch_size=8, embed_dim=192, depth=4, num_heads=3, num_classes=num_classes,
                              global_pool="avg")  # the ViT of cls/tiny_cpu.py at 32 px
    sd = {k: v for k, v in model.state_dict().items() if k not in without}
    args = argparse.Namespace(model="vit_tiny_patch8", nb_classes=num_classes, global_pool=True,
                              finetune="mae_pretrain_vit_tiny.pth")
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"model": sd, "args": args}, path)
    return model


def cls_eval(cls_sets, checkpoint):
    return ("train_cls.py", "--cfg", "cls/tiny_cpu.py", "--data-root", cls_sets["imagenet"], "--eval-only", checkpoint,
            "num_workers=0", "input_size=32", "batch_size=8")


def test_eval_only_evaluates_an_official_fine_tuned_checkpoint_as_its_own(cls_sets, tmp_path):
    official = tmp_path / "official" / "mae_finetuned_vit_tiny.pth"
    timm_model = official_finetuned(official, num_classes=5).eval()
    settings = dict(data_root=cls_sets["imagenet"], output_dir=str(tmp_path / "own"), init="none", num_workers=0,
                    input_size=32, batch_size=8)
    cfg = load_cls_config(os.path.join(ROOT, "configs/cls/tiny_cpu.py"), [f"{k}={v!r}" for k, v in settings.items()])
    own = ClsTrainer(cfg)  # the same weights as tools/train_cls.py's own checkpoint
    own.model.load_state_dict(timm_model.state_dict())
    own.save(1)
    rows = []
    for checkpoint in (official, tmp_path / "own" / "checkpoint-last.pth"):
        args = cls_eval(cls_sets, checkpoint)
        result = subprocess.run([sys.executable, os.path.join(ROOT, "tools", args[0]), *map(str, args[1:])],
                                capture_output=True, text=True, cwd=tmp_path)
        assert result.returncode == 0, result.stderr[-3000:]
        with open(checkpoint.parent / "results.csv") as f:
            rows += list(csv.DictReader(f))
    official_row, own_row = rows
    assert (official_row["top1"], official_row["top5"]) == (own_row["top1"], own_row["top5"])
    assert official_row["run_dir"] == str(official.parent)
    assert official_row["pretrain_checkpoint"] == "mae_pretrain_vit_tiny.pth"  # the official args.finetune
    loaded = ClsTrainer(cfg, resume=str(official), eval_only=True).model.eval()
    assert all(torch.equal(loaded.state_dict()[k], v) for k, v in timm_model.state_dict().items())
    imgs = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(loaded(imgs), timm_model(imgs), atol=1e-5, rtol=0)  # the official architecture


def test_eval_only_refuses_an_official_checkpoint_that_does_not_fit(cls_sets, tmp_path):
    seven = tmp_path / "seven_classes.pth"
    official_finetuned(seven, num_classes=7)
    line = user_error(*cls_eval(cls_sets, seven))
    assert f"{seven}: its head (head.weight) has 7 classes, imagenet under {cls_sets['imagenet']} has 5" in line
    partial = tmp_path / "no_fc_norm.pth"
    official_finetuned(partial, num_classes=5, without=("fc_norm.weight",))
    line = user_error(*cls_eval(cls_sets, partial))
    assert f"{partial} does not match the model; missing keys: fc_norm.weight" in line
    assert not (tmp_path / "results.csv").exists()
