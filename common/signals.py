"""Signals and a run. Moments a signal must not cut in two: Ctrl-C (SIGINT) or SIGTERM inside
`deferred_signals()` takes effect once the block is left. A stop request (SIGTERM, SIGUSR1, SIGUSR2:
what SLURM and submitit send before a time limit or on preemption) inside a `StopRequest` block ends
training at its next step boundary, every process of the run at the same one."""
import contextlib
import os
import signal
import threading
from collections.abc import Iterable, Iterator
from types import FrameType
from typing import Any

# SIGTERM: SLURM at a time limit or preemption, torchrun passing one on, `kill`; SIGUSR1: the usual
# `sbatch --signal=USR1@SECONDS`; SIGUSR2: submitit's (1.5) `--signal=USR2@90` and its local executor's.
STOP_SIGNALS = (signal.SIGTERM, signal.SIGUSR1, signal.SIGUSR2)


@contextlib.contextmanager
def deferred_signals(signals: Iterable[int] = (signal.SIGINT, signal.SIGTERM)) -> Iterator[None]:
    """Holds back the given signals in the main thread, where Python handles them (other threads never
    receive Python-level signals), and delivers them when the block is left."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    pending = []
    previous = {s: signal.signal(s, lambda number, frame: pending.append(number)) for s in signals}
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, signal.SIG_DFL if handler is None else handler)
        for s in dict.fromkeys(pending):
            signal.raise_signal(s)


class Stopped(BaseException):
    """A run ended at a stop request, at a step boundary, its checkpoint complete. A BaseException like
    KeyboardInterrupt, so that the frameworks' `except Exception` (Detectron2 logs a traceback there) let
    it through to common/cli.py. One line per run: only global rank 0 has a message."""

    def __init__(self, signal_name: str, where: str, checkpoint: str, main: bool = True) -> None:
        message = f"stopped by {signal_name} at {where}; --resume auto continues from {checkpoint}"
        super().__init__(message if main else "")


class StopRequest:
    """While installed (`with StopRequest() as request`, or install() / restore() from a framework's hooks),
    a stop signal only notes itself; the training loop asks agreed() at each step boundary. Installed in
    the main thread only (where Python runs signal handlers); the previous handlers come back after."""

    _previous: dict[int, Any]

    def __init__(self) -> None:
        self.signum, self._previous = 0, {}

    def install(self) -> "StopRequest":
        if threading.current_thread() is threading.main_thread():
            self._previous = {s: signal.signal(s, self._note) for s in STOP_SIGNALS}
        return self

    def restore(self) -> None:
        for s, handler in self._previous.items():
            signal.signal(s, signal.SIG_DFL if handler is None else handler)
        self._previous = {}

    def __enter__(self) -> "StopRequest":
        return self.install()

    def __exit__(self, *exc: Any) -> None:
        self.restore()

    def _note(self, signum: int, frame: FrameType | None) -> None:
        self.signum = self.signum or signum

    def agreed(self) -> str | None:
        """The stop signal's name once any process of the run got one, else None. With several processes
        every rank calls it at the same step and all get the same answer: one all_reduce (max) of the
        signal's number, on the device for NCCL. Every step: it measured 0.45-0.6 ms on 2 gloo processes
        sharing 2 CPU cores; on GPUs each of the training loops already waits for its step's loss every
        step, so it adds one 8-byte collective, not another host-device synchronisation."""
        import torch  # here: common/cli.py imports this module before a tool has parsed its arguments
        import torch.distributed as dist

        signum = self.signum
        if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
            device = torch.device("cuda", torch.cuda.current_device()) if dist.get_backend() == "nccl" else "cpu"
            flag = torch.tensor(signum, device=device)
            dist.all_reduce(flag, op=dist.ReduceOp.MAX)
            signum = int(flag.item())
        return signal.Signals(signum).name if signum else None


def _leave_stop_signals_to_the_parent():
    """In a process forked while a StopRequest is installed (DataLoader workers), SIGUSR1 and SIGUSR2 are
    ignored: SLURM's --signal (submitit's USR2) reaches every process of a job step, and a worker killed by
    it would end the run with an error before its step boundary. SIGTERM keeps its default: the loader
    stops a worker that does not end by itself with SIGTERM, and one that ignored it would hang the
    process's exit (a SIGTERM sent to every process of the step still kills the workers; README)."""
    if any(isinstance(getattr(signal.getsignal(s), "__self__", None), StopRequest) for s in STOP_SIGNALS):
        for s in (signal.SIGUSR1, signal.SIGUSR2):
            signal.signal(s, signal.SIG_IGN)


os.register_at_fork(after_in_child=_leave_stop_signals_to_the_parent)
