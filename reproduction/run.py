"""Running a plan: each run in a subprocess (its log in RUN_DIR/reproduce.log) or in-process, marked
done (RUN_DIR/reproduce.done, holding its seconds) once it finished and, for a transfer, recorded its
result row (common.results)."""
import os
import shlex
import subprocess
import time

from common.results import read_result

from .recipes import ROOT


def last_record(run):
    """The run's row in its results CSV (the last one, if evaluated again); None for a run that records none."""
    if not run.result_kind:
        return None
    return read_result(run.result_kind, run.out_dir, run.results_csv)


def execute(run, check_record=True):
    os.makedirs(run.out_dir, exist_ok=True)
    log = os.path.join(run.out_dir, "reproduce.log")
    start = time.perf_counter()
    if run.func:
        run.func()
    else:
        with open(log, "a") as f:
            f.write(f"$ {shlex.join(run.argv)}\n")
            f.flush()
            env = dict(os.environ, PYTHONUNBUFFERED="1")
            code = subprocess.call(run.argv, stdout=f, stderr=subprocess.STDOUT, env=env, cwd=ROOT)
        if code != 0:
            with open(log) as f:
                tail = "".join(f.readlines()[-25:])
            raise SystemExit(f"{tail}\nerror: run {run.name} failed (exit {code}); its log: {log}\n"
                             f"fix the cause and run the same command again: finished runs are kept, this one resumes")
        if run.results_csv and check_record and last_record(run) is None:
            raise SystemExit(f"error: run {run.name} finished but left no row for {run.out_dir} in {run.results_csv}")
    run.seconds = time.perf_counter() - start
    with open(run.marker, "w") as f:
        f.write(f"{run.seconds:.1f}\n")


def execute_all(preset, names, check_record=True):
    """Runs the given runs of preset in order (dependencies first), printing progress."""
    started = time.perf_counter()
    for i, name in enumerate(names, 1):
        print(f"[reproduce] {i}/{len(names)} {name} ...", flush=True)
        execute(preset.runs[name], check_record=check_record)
        print(f"[reproduce]     done in {preset.runs[name].seconds:.0f} s", flush=True)
    if names:
        print(f"[reproduce] {len(names)} runs in {(time.perf_counter() - started) / 60:.1f} min")
