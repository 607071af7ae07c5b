"""tools/submit.py on a real one-node SLURM cluster (scripts/slurm_local.sh: Debian's slurm-wlm and
munge, started here and stopped after): 2-task jobs that finish, and jobs requeued mid-run (by
`scontrol requeue`, and by the time-limit signal submitit asks SLURM for) that end with the weights of
an uninterrupted run. If the cluster cannot start, the tests fail with its reason."""
import csv
import json
import os
import re
import subprocess
import sys
import time

import pytest
from conftest import ROOT, TINY_PRETRAIN_ARGS

from common.checkpoint_files import load_file
from reproduction.toy_data import write_image_folder

pytestmark = pytest.mark.slow

@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    folder = tmp_path_factory.mktemp("slurm")
    env = {**os.environ, "MAE_SLURM_DIR": str(folder)}
    script = os.path.join(ROOT, "scripts", "slurm_local.sh")
    started = subprocess.run([script, "start"], capture_output=True, text=True, env=env, timeout=300)
    if started.returncode != 0:
        pytest.fail(f"the local SLURM cluster did not start: {started.stderr.strip()}", pytrace=False)
    conf = re.search(r"SLURM_CONF=(\S+)", started.stdout).group(1)
    os.environ["SLURM_CONF"] = conf
    yield conf
    subprocess.run([script, "stop"], env=env, timeout=60)
    os.environ.pop("SLURM_CONF", None)


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    root = tmp_path_factory.mktemp("images")
    write_image_folder(str(root), num_images=16, size=40, seed=1)
    return str(root)


def submit(*args):
    result = subprocess.run([sys.executable, os.path.join(ROOT, "tools", "submit.py"), *map(str, args)],
                            capture_output=True, text=True, cwd=ROOT, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert result.returncode == 0, result.stderr[-3000:]
    return re.search(r"submitted job (\d+)", result.stdout).group(1)


# the states of a job that will not run again (slurmctld lists it so for MinJobAge, then not at all: "")
FINISHED = ("", "COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "OUT_OF_MEMORY", "NODE_FAIL", "BOOT_FAIL", "DEADLINE")


def state(job):
    """The job's state among all states: squeue's default lists only pending, running and completing
    jobs, so a job passing through REQUEUED looked finished. A query the busy controller did not
    answer is asked again, not read as no job."""
    for _ in range(30):
        result = subprocess.run(["squeue", "-h", "-t", "all", "-j", job, "-o", "%T"], capture_output=True, text=True)
        if result.returncode == 0 or "Invalid job id" in result.stderr:
            return result.stdout.strip()
        time.sleep(1)
    raise AssertionError(f"squeue did not answer for job {job}: {result.stderr.strip()}")


def steps_alive(job):
    """Whether any step of the job's previous run still runs on the node (slurmstepd: [JOB.batch], [JOB.0])."""
    return subprocess.run(["pgrep", "-f", rf"^slurmstepd: \[{job}\."], capture_output=True).returncode == 0


def wait_until_gone(job, seconds=600):
    """Waits for the job to finish for good. A requeued job is released as soon as its previous run's
    steps have ended (SLURM would hold it a while): released before, the old batch script's late exit
    was taken for the new run's and ended the job."""
    deadline = time.time() + seconds
    while (now := state(job)) not in FINISHED:
        assert time.time() < deadline, f"job {job} still {now} after {seconds} s"
        if now == "PENDING" and not steps_alive(job):
            time.sleep(1)  # the controller takes the ended run's completion message
            subprocess.run(["scontrol", "update", f"JobId={job}", "StartTime=now"], capture_output=True)
        time.sleep(1)


def wait_for(path, job, seconds=300):
    deadline = time.time() + seconds
    while not os.path.exists(path):
        assert state(job) not in FINISHED and time.time() < deadline, f"job {job} ended or timed out before {path} appeared"
        time.sleep(0.2)


def pretrain_job(images, out, epochs, **slurm):
    return submit("--tasks-per-node", 2, "--cpus-per-task", 1, "--time", 20, *sum(([f"--{k}", v] for k, v in slurm.items()), []),
                  "--", "tools/pretrain.py", "--cfg", "pretrain/mae_vit_tiny_cpu.py", "--data", images, "--output-dir",
                  out, *TINY_PRETRAIN_ARGS, f"epochs={epochs}")


def digests(out):
    with open(os.path.join(out, "summary.json")) as f:
        summary = json.load(f)
    assert summary["world_size"] == 2
    return summary["rank_param_digests"]


@pytest.fixture(scope="module")
def uninterrupted(cluster, images, tmp_path_factory):
    out = str(tmp_path_factory.mktemp("uninterrupted"))
    job = pretrain_job(images, out, epochs=4)
    wait_until_gone(job)
    return digests(out)


def test_a_two_task_job_trains_with_slurms_rendezvous_and_logs_in_the_run(uninterrupted):
    assert len(set(uninterrupted)) == 1  # both tasks ended with the same weights


@pytest.mark.parametrize("interruption", ["scontrol requeue", "time-limit signal"])
def test_a_requeued_job_continues_and_ends_as_an_uninterrupted_one(cluster, images, uninterrupted, tmp_path, interruption):
    out = str(tmp_path / "run")
    job = pretrain_job(images, out, epochs=4)
    wait_for(os.path.join(out, "checkpoint-0001.pth"), job)
    if interruption == "scontrol requeue":
        subprocess.run(["scontrol", "requeue", job], check=True)
    else:  # what SLURM sends signal_delay_s before the time limit: submitit requeues through ToolTask.checkpoint
        subprocess.run(["scancel", "--signal=USR2", job], check=True)
    wait_until_gone(job)
    assert digests(out) == uninterrupted
    logs = "".join(open(os.path.join(out, "slurm", job, name)).read() for name in os.listdir(os.path.join(out, "slurm", job))
                   if name.endswith("_0_log.out") or name.endswith("_0_log.err"))
    assert re.search(rf"resumed from {re.escape(out)}/checkpoint-(last|\d+)\.pth at epoch [1-4]\b", logs), logs[-3000:]
    assert load_file(os.path.join(out, "checkpoint-last.pth"))["epoch"] == 4


def test_submission_mistakes_are_one_line(cluster, images, tmp_path):
    from conftest import user_error

    assert "is not a tool a job can run" in user_error("submit.py", "--", "tools/sweep.py")
    assert "needs its --output-dir here" in user_error("submit.py", "--", "tools/pretrain.py", "--cfg", "x.py")
    assert "runs in one process" in user_error("submit.py", "--tasks-per-node", "2", "--", "tools/train_dvae.py",
                                               "--data", images, "--output-dir", tmp_path)
    assert "is not a SLURM time limit" in user_error("submit.py", "--time", "soon", "--", "tools/pretrain.py",
                                                     "--output-dir", tmp_path)


def test_the_paper_preset_submits_each_run_after_its_inputs_and_skips_finished_ones(cluster, tmp_path):
    out = tmp_path / "reproduction"
    finished = out / "runs" / "paper" / "pretrain-B-norm_pixel"
    finished.mkdir(parents=True)
    (finished / "reproduce.done").write_text("1.0\n")
    # the partition down: the jobs are queued with their dependencies, none starts (there is no data)
    subprocess.run(["scontrol", "update", "PartitionName=local", "State=DOWN"], check=True)
    try:
        result = subprocess.run([sys.executable, os.path.join(ROOT, "tools", "reproduce.py"), "--preset", "paper",
                                 "--out", str(out), "--data-root", str(tmp_path / "data"), "--tables", "3,4", "--submit",
                                 "--cpu-cluster", "--nproc-per-node", "1", "--cpus-per-task", "1", "--time", "10"],
                                capture_output=True, text=True, cwd=ROOT)
        assert result.returncode == 0, result.stderr[-3000:]
        jobs = dict(re.findall(r"submitted (\S+): job (\d+)", result.stdout))
        queued = dict(line.split(maxsplit=1) for line in subprocess.run(
            ["squeue", "-h", "-o", "%i %E"], capture_output=True, text=True, check=True).stdout.splitlines())
    finally:
        subprocess.run(["scancel", "--partition=local"], check=False)
        subprocess.run(["scontrol", "update", "PartitionName=local", "State=UP"], check=True)
    assert "pretrain-B-norm_pixel" not in jobs and "pretrain-L-norm_pixel" in jobs
    assert set(jobs.values()) <= set(queued)
    # SLURM's own record of each dependency: afterok on the job of every pending input, none on a finished one
    assert queued[jobs["cls-imagenet-B-norm_pixel-seed0"]] == "(null)"
    assert queued[jobs["det-B-supervised-seed0"]] == f"afterok:{jobs['cls-imagenet-B-scratch-seed0']}(unfulfilled)"
    assert queued[jobs["det-L-norm_pixel-seed0"]] == f"afterok:{jobs['pretrain-L-norm_pixel']}(unfulfilled)"


def test_two_task_detection_and_segmentation_jobs_finish_and_record_one_row_each(cluster, tmp_path):
    from reproduction.toy_data import write_ade20k, write_coco

    coco = write_coco(str(tmp_path / "coco"), num_train=4, num_val=2, size=128, seed=3)
    ade = write_ade20k(str(tmp_path / "ade"), num_train=4, num_val=2, size=64, seed=2)
    two_tasks = ("--tasks-per-node", 2, "--cpus-per-task", 1, "--time", 20, "--")
    det = submit(*two_tasks, "tools/train_det.py", "--cfg", "det/mask_rcnn_vit_tiny.py", "--output-dir", tmp_path / "det",
                 *[f"--dataset=toy_coco_{s}={ann}:{img}" for s, (ann, img) in coco.items()], "--init", "none",
                 "train.max_iter=2", "train.eval_period=2", "dataloader.train.total_batch_size=2")
    seg = submit(*two_tasks, "tools/train_seg.py", "--cfg", "seg/upernet_vit_tiny.py", "--output-dir", tmp_path / "seg",
                 "--data-root", ade, "--init", "none", "train_cfg.max_iters=2", "train_cfg.val_interval=2",
                 "default_hooks.checkpoint.interval=2", "train_dataloader.batch_size=2")
    for job, out in ((det, tmp_path / "det"), (seg, tmp_path / "seg")):
        wait_until_gone(job)
        logs = os.path.join(out, "slurm", job)
        assert os.path.isfile(os.path.join(logs, f"{job}_0_result.pkl")) and os.path.isfile(os.path.join(logs, f"{job}_1_result.pkl"))
        with open(out / "results.csv") as f:
            rows = list(csv.DictReader(f))
        assert [r["iteration"] for r in rows] == ["2"], open(os.path.join(logs, f"{job}_0_log.err")).read()[-3000:]
