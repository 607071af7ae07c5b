"""Running a plan: each run in a subprocess (its log in RUN_DIR/reproduce.log) or in-process, marked
done (RUN_DIR/reproduce.done, holding its seconds) once it finished and, for a transfer, recorded its
result row (common.results)."""
import argparse
import os
import shlex
import subprocess
import time
from collections.abc import Iterable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait

from common.project import ROOT
from common.results import read_result

from .recipes import Preset, Run



def last_record(run: Run) -> dict[str, str] | None:
    """The run's row in its results CSV (the last one, if evaluated again); None for a run that records none."""
    if not run.result_kind:
        return None
    return read_result(run.result_kind, run.out_dir, run.results_csv)


def execute(run: Run, check_record: bool = True, threads: int | None = None) -> None:
    """Runs one run and marks it done. threads: the intra-op threads of its subprocess (OMP_NUM_THREADS),
    None to leave the environment's."""
    os.makedirs(run.out_dir, exist_ok=True)
    log = os.path.join(run.out_dir, "reproduce.log")
    start = time.perf_counter()
    if run.func:
        run.func()
    else:
        assert run.argv is not None, f"run {run.name} has neither a func nor an argv"
        with open(log, "a") as f:
            f.write(f"$ {shlex.join(run.argv)}\n")
            f.flush()
            env = dict(os.environ, PYTHONUNBUFFERED="1")
            if threads:
                env["OMP_NUM_THREADS"] = str(threads)
            code = subprocess.call(run.argv, stdout=f, stderr=subprocess.STDOUT, env=env, cwd=ROOT)
        if code != 0:
            with open(log) as f:
                tail = "".join(f.readlines()[-25:])
            raise SystemExit(f"{tail}\nerror: run {run.name} failed (exit {code}); its log: {log}\n"
                             f"fix the cause and run the same command again: finished runs are kept, this one resumes")
    mark_done(run, time.perf_counter() - start, check_record)


def mark_done(run: Run, seconds: float, check_record: bool = True) -> None:
    """A finished run is done once its result row is there (transfers); the marker holds its seconds."""
    if run.results_csv and check_record and last_record(run) is None:
        raise SystemExit(f"error: run {run.name} finished but left no row for {run.out_dir} in {run.results_csv}")
    run.seconds = seconds
    with open(run.marker, "w") as f:
        f.write(f"{run.seconds:.1f}\n")


class MarkDone:
    """A SLURM job's on_success (common.slurm): marks its run done, with the job's seconds."""

    def __init__(self, run: Run) -> None:
        self.run, self.submitted = run, time.time()

    def __call__(self) -> None:
        mark_done(self.run, time.time() - self.submitted)


def submit_all(preset: Preset, names: Iterable[str], slurm_args: argparse.Namespace) -> dict[str, str]:
    """Submits the given runs (in dependency order) as SLURM jobs, each after the jobs of its pending
    dependencies have succeeded (afterok); runs already done are not submitted. -> {name: job id}."""
    from common import slurm

    jobs: dict[str, str] = {}
    for name in names:
        run = preset.runs[name]
        after = [jobs[dep] for dep in run.deps if dep in jobs]
        assert run.argv is not None, "only the paper preset is submitted: its runs are all tools'"
        job = slurm.submit(slurm_args, run.argv, dependency="afterok:" + ":".join(after) if after else None,
                           on_success=MarkDone(run))
        jobs[name] = job.job_id
        print(f"[reproduce] submitted {name}: job {job.job_id}" + (f" after {', '.join(after)}" if after else ""), flush=True)
    return jobs


def execute_all(preset: Preset, names: Sequence[str], check_record: bool = True, jobs: int = 1) -> None:
    """Runs the given runs of preset, each once its dependencies are done, at most `jobs` at a time (in
    the order of `names` when jobs is 1), printing progress. With jobs > 1 each subprocess gets an equal
    share of the CPU cores as intra-op threads (unless OMP_NUM_THREADS is set): small models use two
    single-threaded processes better than one with two threads. A failed run stops new starts; the
    runs already going finish, then the first failure is raised."""
    started = time.perf_counter()
    threads = None if jobs == 1 or "OMP_NUM_THREADS" in os.environ else max(1, (os.cpu_count() or 1) // jobs)
    waiting, count = list(names), 0
    running: dict[str, Future[None]] = {}
    failures: list[BaseException] = []
    blocked = _dependents(preset, names)
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        while waiting or running:
            ready = [n for n in waiting if not any(dep in waiting or dep in running for dep in preset.runs[n].deps)]
            if jobs > 1:  # what unblocks the most runs first, to keep every slot busy (stable: else in order)
                ready.sort(key=lambda n: -len(blocked[n]))
            while ready and len(running) < jobs and not failures:
                name = ready.pop(0)
                waiting.remove(name)
                count += 1
                print(f"[reproduce] {count}/{len(names)} {name} ...", flush=True)
                running[name] = pool.submit(execute, preset.runs[name], check_record, threads)
            if not running:
                break
            finished, _ = wait(running.values(), return_when=FIRST_COMPLETED)
            for name in [n for n, future in running.items() if future in finished]:
                error = running.pop(name).exception()
                if error is not None:
                    failures.append(error)
                else:
                    print(f"[reproduce]     {name} done in {preset.runs[name].seconds:.0f} s", flush=True)
    if failures:
        raise failures[0]
    if names:
        print(f"[reproduce] {len(names)} runs in {(time.perf_counter() - started) / 60:.1f} min")


def _dependents(preset, names):
    """name -> the set of runs among names that need it, directly or through others."""
    needed_by = {name: set() for name in names}
    for name in reversed(names):  # dependencies come first in names, so a run's dependents are complete here
        for dep in preset.runs[name].deps:
            if dep in needed_by:
                needed_by[dep] |= {name} | needed_by[name]
    return needed_by
