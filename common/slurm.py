"""Running the project's tools as SLURM jobs through submitit, as the official MAE code's
submitit_pretrain.py does: one task per GPU (or per process on CPU nodes), the rendezvous taken from
SLURM's environment, the job's logs in the run's folder, and a requeue when the time limit nears.

Each task runs the tool as its own subprocess (the same program as when started by hand) with the
torch.distributed variables of its task (submitit's TorchDistributedEnvironment); Detectron2's tool
gets its launch flags instead (one process per task). The tool always runs with `--resume auto`, so
a requeued job (a time limit, a preemption, `scontrol requeue`) continues from its last checkpoint.
On a time limit, SLURM signals the job (submitit's USR2, `signal_delay_s` before the end); the tool
writes its checkpoint and stops, and submitit requeues the job through `ToolTask.checkpoint`, which
waits for the tool to have stopped."""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from .errors import UserError
from .project import ROOT, TOOL_OF_SCRIPT, tool_path

if TYPE_CHECKING:
    import submitit

OUTPUT_FLAGS = ("--output-dir", "--work-dir")
STOP_WAIT_S = 80  # how long the requeue waits for the tool to stop (submitit signals 90 s before the limit)


def add_arguments(parser: argparse.ArgumentParser, resources: bool = True) -> None:
    """The submission options (tools/submit.py; tools/reproduce.py takes its resources from its own
    --nnodes / --nproc-per-node)."""
    group = parser.add_argument_group("SLURM (through submitit)")
    if resources:
        group.add_argument("--nodes", type=int, default=1)
        group.add_argument("--gpus-per-node", type=int, default=0, help="one task per GPU (0: a CPU job)")
        group.add_argument("--tasks-per-node", type=int, help="processes per node without GPUs (default 1)")
        group.add_argument("--job-name", help="default: the tool and its output folder's name")
        group.add_argument("--job-dir", help="the job's logs and submitit files (default: OUTPUT_DIR/slurm/%%j)")
        group.add_argument("--dependency", help="e.g. afterok:1234 (sbatch's --dependency)")
    group.add_argument("--cpus-per-task", type=int, default=10)
    group.add_argument("--mem", help="memory per node, e.g. 400G (default: the partition's)")
    group.add_argument("--partition")
    group.add_argument("--time", default="72:00:00", help="time limit, [D-]HH:MM:SS or minutes")
    group.add_argument("--account")
    group.add_argument("--qos")
    group.add_argument("--constraint")
    group.add_argument("--exclude")


def minutes(text: str) -> int:
    """SLURM's time formats: MM, HH:MM:SS, D-HH[:MM[:SS]] -> whole minutes."""
    days, _, clock = text.rpartition("-")
    try:
        parts = [int(p) for p in clock.split(":")]
        if len(parts) == 1 and not days:
            return parts[0]
        hours, mins, secs = (parts + [0, 0])[:3]
        return int(days or 0) * 1440 + hours * 60 + mins + (secs + 59) // 60
    except ValueError:
        raise UserError(f"--time {text!r} is not a SLURM time limit (MM, HH:MM:SS or D-HH:MM:SS)") from None


def tool_command(command: list[str]) -> list[str]:
    """`tools/X.py ARGS` as given after `--`, checked: a tool a job can run, with --resume auto added
    unless a resume is asked for."""
    if not command:
        raise UserError("no tool to submit: write it after --, e.g. -- tools/pretrain.py --cfg ... --output-dir ...")
    name = os.path.basename(command[0])
    if name not in TOOL_OF_SCRIPT:
        raise UserError(f"{command[0]} is not a tool a job can run; one of: {', '.join('tools/' + t for t in TOOL_OF_SCRIPT)}")
    if not any(flag in command for flag in OUTPUT_FLAGS):
        raise UserError(f"tools/{name} needs its --output-dir here: a requeued job continues from that folder")
    if "--eval-only" in command or "--resume" in command:
        return [name, *command[1:]]
    return [name, *command[1:], "--resume", "auto"]


def output_dir(command: list[str]) -> str:
    flag = next(i for i, arg in enumerate(command) if arg in OUTPUT_FLAGS)
    return command[flag + 1]


class ToolTask:
    """The job's callable: runs the tool in each task (then on_success() on rank 0, e.g. marking a
    reproduction run done); submitit calls checkpoint() on a time limit."""

    def __init__(self, command: list[str], on_success: Callable[[], object] | None = None) -> None:
        self.command, self.on_success = command, on_success
        self.proc: subprocess.Popen | None = None

    def __getstate__(self):  # the running subprocess stays with this task
        return {**self.__dict__, "proc": None}

    def __call__(self) -> int:
        import submitit

        job = submitit.JobEnvironment()
        argv = [arg.replace("%j", str(job.job_id)) for arg in self.command]
        env = dict(os.environ)
        dist = submitit.helpers.TorchDistributedEnvironment()
        launch = TOOL_OF_SCRIPT[argv[0]].launch
        if launch == "detectron2":  # its own launch: one process per task, each a "machine" of one
            argv += ["--num-gpus", "1", "--num-machines", str(dist.world_size), "--machine-rank", str(dist.rank),
                     "--dist-url", f"tcp://{dist.master_addr}:{dist.master_port}"]
        elif launch == "env":
            env.update(MASTER_ADDR=dist.master_addr, MASTER_PORT=str(dist.master_port), RANK=str(dist.rank),
                       WORLD_SIZE=str(dist.world_size), LOCAL_RANK=str(dist.local_rank),
                       LOCAL_WORLD_SIZE=str(dist.local_world_size))
        env["PYTHONUNBUFFERED"] = "1"
        self.proc = subprocess.Popen([sys.executable, tool_path(argv[0]), *argv[1:]], env=env,
                                     cwd=ROOT)
        code = _wait(self.proc)
        if code != 0:
            raise RuntimeError(f"tools/{argv[0]} exited with code {code} (task {dist.rank} of {dist.world_size})")
        if dist.rank == 0 and self.on_success is not None:
            self.on_success()
        return code

    def checkpoint(self) -> submitit.helpers.DelayedSubmission:
        """On a time limit (rank 0): once the tool has written its checkpoint and stopped, the same command
        again; it continues with --resume auto."""
        import submitit

        if self.proc is not None:  # past the wait, requeued all the same: it resumes from its last complete checkpoint
            _wait(self.proc, STOP_WAIT_S)
        return submitit.helpers.DelayedSubmission(ToolTask(self.command, self.on_success))


def _wait(proc, seconds=None):
    """The exit code (None after `seconds`). Polls: checkpoint() runs in a signal handler that may have
    interrupted __call__'s wait, and Popen.wait() would block on the lock that wait still holds."""
    deadline = None if seconds is None else time.monotonic() + seconds
    while proc.poll() is None:
        if deadline is not None and time.monotonic() > deadline:
            return None
        time.sleep(0.2)
    return proc.returncode


def submit(args: argparse.Namespace, command: list[str], dependency: str | None = None,
           on_success: Callable[[], object] | None = None, job_dir: str | None = None) -> submitit.Job:
    """Submits one job running `command` (a tool's command line) with the resources and scheduler
    options of args (add_arguments); -> the submitit Job."""
    import submitit

    command = tool_command(command)
    per_node = args.gpus_per_node or args.tasks_per_node or 1
    if TOOL_OF_SCRIPT[command[0]].launch == "single" and args.nodes * per_node > 1:
        raise UserError(f"tools/{command[0]} runs in one process: submit it with one node and one task")
    out = output_dir(command)
    executor = submitit.AutoExecutor(folder=job_dir or os.path.join(out, "slurm", "%j"))
    params = dict(nodes=args.nodes, tasks_per_node=per_node, cpus_per_task=args.cpus_per_task,
                  timeout_min=minutes(args.time), name=getattr(args, "job_name", None) or
                  f"{command[0][:-3]}-{os.path.basename(out)}", slurm_signal_delay_s=90,
                  slurm_setup=[f"export PYTHONPATH={ROOT}${{PYTHONPATH:+:$PYTHONPATH}}"])  # to unpickle ToolTask
    if args.gpus_per_node:
        params["gpus_per_node"] = args.gpus_per_node
    optional = {"slurm_mem": args.mem, "slurm_partition": args.partition, "slurm_account": args.account,
                "slurm_qos": args.qos, "slurm_constraint": args.constraint, "slurm_exclude": args.exclude}
    params.update({k: v for k, v in optional.items() if v})
    if dependency:
        params["slurm_additional_parameters"] = {"dependency": dependency}
    executor.update_parameters(**params)
    return executor.submit(ToolTask(command, on_success))
