"""Detection and segmentation in several processes on CPUs (gloo), started by the engines' own
launchers (Detectron2's launch, torchrun, and mmengine's slurm launcher as srun starts it): two
processes train like one process of the same total batch, rank 0 alone writes checkpoints and result
rows, and evaluation gathers every process's predictions into the metric one process gives."""
import csv
import json
import os
import socket
import subprocess
import sys

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from conftest import ROOT

from common.checkpoint_files import load_file
from reproduction.toy_data import write_ade20k, write_coco
from seg import mmengine_checkpoint_globals
from seg.distributed import GlooSyncBatchNorm, sync_batchnorm_over_gloo

ENV = {**os.environ, "OMP_NUM_THREADS": "1"}  # two processes on a few shared cores: one thread each


def tool(name, *args, launcher=(sys.executable,), env=ENV, cwd=ROOT):
    result = subprocess.run([*launcher, os.path.join(ROOT, "tools", name), *map(str, args)], capture_output=True,
                            text=True, env=env, cwd=cwd)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    return result.stdout + result.stderr


def rows(path):
    with open(path) as f:
        return list(csv.DictReader(f))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _syncbn_worker(rank, init_file):
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=2)
    torch.manual_seed(0)
    x = torch.randn(6, 3, 5, 4) * 3 + 2  # the whole batch; this process holds 3 of its images
    weights = torch.randn(6, 3, 5, 4)  # a loss that weighs every output differently
    reference = torch.nn.BatchNorm2d(3)
    with torch.no_grad():
        reference.weight.uniform_(0.5, 2)
        reference.bias.uniform_(-1, 1)
    layer = sync_batchnorm_over_gloo(torch.nn.Sequential(torch.nn.SyncBatchNorm(3)))[0]
    assert type(layer) is GlooSyncBatchNorm
    layer.load_state_dict(reference.state_dict())
    whole, mine = x.clone().requires_grad_(), x[3 * rank:3 * rank + 3].clone().requires_grad_()
    expected = reference(whole)
    (expected * weights).sum().backward()
    out = layer(mine)
    (out * weights[3 * rank:3 * rank + 3]).sum().backward()
    torch.testing.assert_close(out, expected[3 * rank:3 * rank + 3], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(mine.grad, whole.grad[3 * rank:3 * rank + 3], atol=1e-5, rtol=1e-5)
    for param in (layer.weight, layer.bias):  # each process's share; DistributedDataParallel sums them
        dist.all_reduce(param.grad)
    torch.testing.assert_close(layer.weight.grad, reference.weight.grad, atol=1e-4, rtol=1e-5)
    torch.testing.assert_close(layer.bias.grad, reference.bias.grad, atol=1e-4, rtol=1e-5)
    for name in ("running_mean", "running_var", "num_batches_tracked"):
        torch.testing.assert_close(getattr(layer, name), getattr(reference, name), atol=1e-5, rtol=1e-5)
    layer.eval(), reference.eval()  # evaluation: each process's own input and the running statistics
    torch.testing.assert_close(layer(mine), reference(mine), atol=1e-6, rtol=1e-6)
    dist.destroy_process_group()


def test_gloo_syncbn_normalises_over_every_process_batch_with_the_gradients_of_one(tmp_path):
    """GlooSyncBatchNorm in 2 processes (3 images each) against BatchNorm2d over all 6 images."""
    mp.start_processes(_syncbn_worker, args=(str(tmp_path / "init"),), nprocs=2, start_method="fork")


# What makes one process and two see the same samples of the same batches; the rest is the engines':
# Detectron2's TrainingSampler and mmengine's InfiniteSampler give process r items r, r + N, ... of
# one seeded order, so a step's batch is the same images for 1 process of batch 4 and 2 of batch 2.
DET_SAME_BATCHES = [
    "dataloader.train.mapper.augmentations=[]",  # each process draws augmentations from its own RNG (seed + rank)
    # every anchor (4092 at 128 px) and every proposal is a training sample: no random subsampling per process
    "model.proposal_generator.batch_size_per_image=8192", "model.roi_heads.batch_size_per_image=1024",
    "model.roi_heads.box_predictor.test_score_thresh=0.0",  # 100 predictions per image to gather, trained or not
    "train.max_iter=8", "train.checkpointer.period=4", "train.eval_period=8", "train.log_period=1",
]


def det_weights(path):
    return load_file(str(path))["model"]


def distance(a, b):
    return sum(((a[k].double() - b[k].double()) ** 2).sum() for k in a if a[k].is_floating_point()).item() ** 0.5


@pytest.mark.slow
def test_detection_in_two_processes_trains_and_evaluates_as_one(tmp_path):
    splits = write_coco(str(tmp_path / "coco"), num_train=16, num_val=9, size=128, seed=3)
    data = [f"--dataset=toy_coco_{s}={ann}:{img}" for s, (ann, img) in splits.items()]
    one, two, evaluated = tmp_path / "one", tmp_path / "two", tmp_path / "evaluated"
    tool("train_det.py", "--cfg", "det/mask_rcnn_vit_tiny.py", *data, "--init", "none", "--output-dir", one,
         *DET_SAME_BATCHES)  # total batch 4
    tool("train_det.py", "--cfg", "det/mask_rcnn_vit_tiny.py", *data, "--init", "none", "--output-dir", two,
         "--num-gpus", "2", *DET_SAME_BATCHES)  # Detectron2's launch: 2 CPU processes, 2 images each
    assert "Rank of current process: 1. World size: 2" in (two / "log.txt.rank1").read_text()
    checkpoints = ["model_0000003.pth", "model_0000007.pth", "model_final.pth"]
    assert sorted(p.name for p in one.glob("*.pth")) == sorted(p.name for p in two.glob("*.pth")) == checkpoints
    assert [r["iteration"] for r in rows(two / "results.csv")] == ["8"]  # rank 0's row, once

    # The losses Detectron2 logs (in 2 processes the mean of theirs) agree at every iteration to 1e-3
    # (measured here: 1e-4 at most), the weights after 8 steps to 15% of what the last 4 steps changed
    # (measured: 6%; one process of batch 2, as a process training alone would: 69%). Not exactly:
    # each process normalises its RoI head losses by its own RoIs (the box losses by its proposals,
    # the mask loss by its foreground RoIs), so its images weigh by their share of those counts, and
    # AdamW's normalised steps carry the small difference on.
    def losses(run):
        with open(run / "metrics.json") as f:
            return [json.loads(line)["total_loss"] for line in f if "total_loss" in line]

    assert len(losses(two)) == 8 and losses(two) == pytest.approx(losses(one), rel=1e-3)
    final_one, final_two = det_weights(one / "model_final.pth"), det_weights(two / "model_final.pth")
    assert distance(final_two, final_one) < 0.15 * distance(final_one, det_weights(one / "model_0000003.pth"))

    tool("train_det.py", "--cfg", "det/mask_rcnn_vit_tiny.py", *data, "--output-dir", evaluated, "--num-gpus", "2",
         "--eval-only", one / "model_final.pth", "model.roi_heads.box_predictor.test_score_thresh=0.0")
    (trained,), (gathered,) = rows(one / "results.csv"), rows(evaluated / "results.csv")
    assert [gathered[k] for k in ("ap_box", "ap_mask", "iteration")] == [trained["ap_box"], trained["ap_mask"], "8"]
    with open(one / "inference" / "coco_instances_results.json") as f:
        predictions = json.load(f)
    with open(evaluated / "inference" / "coco_instances_results.json") as f:
        assert json.load(f) == predictions  # both processes' images, boxes and masks, gathered by rank 0
    assert {p["image_id"] for p in predictions} == set(range(1, 10))


SYNC_BN = "dict(type='SyncBN', requires_grad=True)"
SEG_SAME_BATCHES = [
    # the tiny config's BN normalises over each process's images: SyncBN, as the paper configs
    *[f"model.{part}.norm_cfg={SYNC_BN}" for part in ("neck", "decode_head", "auxiliary_head")],
    "model.decode_head.dropout_ratio=0.0", "model.auxiliary_head.dropout_ratio=0.0",  # each process's own RNG
    "train_dataloader.dataset.pipeline=[dict(type='LoadImageFromFile'), "  # no random resizing, cropping, flipping
    "dict(type='LoadAnnotations', reduce_zero_label=True), dict(type='PackSegInputs')]",
    "train_cfg.max_iters=10", "train_cfg.val_interval=10", "default_hooks.checkpoint.interval=5",
]


def seg_weights(path):
    with mmengine_checkpoint_globals():
        return load_file(str(path))["state_dict"]


@pytest.mark.slow
def test_segmentation_in_two_processes_trains_and_evaluates_as_one(tmp_path):
    data = write_ade20k(str(tmp_path / "ade"), num_train=16, num_val=9, size=64, seed=2)
    one, two, evaluated = tmp_path / "one", tmp_path / "two", tmp_path / "evaluated"
    common = ["--cfg", "seg/upernet_vit_tiny.py", "--data-root", data]
    # mmengine gathers evaluation results through a folder it makes in the working directory (.dist_test)
    tool("train_seg.py", *common, "--init", "none", "--work-dir", one, *SEG_SAME_BATCHES,
         "train_dataloader.batch_size=4", cwd=tmp_path)
    torchrun = (sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2")
    tool("train_seg.py", *common, "--init", "none", "--work-dir", two, *SEG_SAME_BATCHES,
         "train_dataloader.batch_size=2", launcher=torchrun, cwd=tmp_path)  # 2 processes, 2 images each
    checkpoints = ["iter_10.pth", "iter_5.pth"]
    assert sorted(p.name for p in one.glob("*.pth")) == sorted(p.name for p in two.glob("*.pth")) == checkpoints
    assert [r["iteration"] for r in rows(two / "results.csv")] == ["10"]  # rank 0's row, once

    # Equal but for the order of floating-point sums (measured: 4e-5 at most after 10 AdamW steps on an
    # AVX-512 CPU; on an AVX2-only one the batch norms' running variances, about 10 in size, differed by up
    # to 2.8e-4, 2.5e-5 of their value, hence the relative term; one process of batch 2, as a process
    # training alone would: up to 8.4): the same images per
    # step, and with equal crops in every process the batch norm statistics (all-reduced) and mmseg's
    # per-pixel mean losses (averaged by DistributedDataParallel) are those of the whole batch.
    final_one, final_two = seg_weights(one / "iter_10.pth"), seg_weights(two / "iter_10.pth")
    assert final_one.keys() == final_two.keys()
    for key in final_one:
        torch.testing.assert_close(final_two[key], final_one[key], atol=2e-4, rtol=1e-4, msg=key)

    # mmengine's slurm launcher in the 2 tasks srun would start; MASTER_ADDR and MASTER_PORT, which it
    # would otherwise take from scontrol and 29500, name this machine. 9 images: one process gets a
    # padding copy, which the gathering drops.
    port, tasks = free_port(), []
    for rank in range(2):
        env = {**ENV, "SLURM_PROCID": str(rank), "SLURM_LOCALID": str(rank), "SLURM_NTASKS": "2",
               "SLURM_NODELIST": socket.gethostname(), "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port)}
        with open(tmp_path / f"task{rank}.log", "w") as log:
            tasks.append(subprocess.Popen([sys.executable, os.path.join(ROOT, "tools", "train_seg.py"), "--launcher",
                                           "slurm", *common, "--work-dir", evaluated, "--eval-only", one / "iter_10.pth"],
                                          stdout=log, stderr=subprocess.STDOUT, env=env, cwd=tmp_path))
    codes = [task.wait(timeout=300) for task in tasks]
    assert codes == [0, 0], "".join((tmp_path / f"task{rank}.log").read_text()[-3000:] for rank in range(2))
    (trained,), (gathered,) = rows(one / "results.csv"), rows(evaluated / "results.csv")
    assert float(trained["mIoU"]) > 0
    metrics = ("mIoU", "mAcc", "aAcc")
    assert [gathered[k] for k in (*metrics, "iteration")] == [trained[k] for k in metrics] + ["10"]
