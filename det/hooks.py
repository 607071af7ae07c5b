"""Detectron2 hooks of the project's training loop."""
import os

from detectron2.checkpoint import DetectionCheckpointer
from detectron2.engine import HookBase
from detectron2.utils import comm

from common.signals import Stopped, StopRequest


class StopAtSignal(HookBase):
    """A stop request (SIGTERM, SIGUSR1, SIGUSR2; common/signals.py) ends training after the step at
    which every rank agrees on it: rank 0 saves model_{iter:07d}.pth through the checkpointer (as
    PeriodicCheckpointer names them; `--resume auto` continues there), every rank waits for the file,
    then Stopped. Registered last, after the lr scheduler's step. Not at the last iteration: the run ends
    there anyway, and Detectron2's final evaluation (in a `finally`) would run again on resume."""

    def __init__(self, checkpointer: DetectionCheckpointer) -> None:
        self.checkpointer, self.request = checkpointer, StopRequest()

    def before_train(self) -> None:  # the data workers start at the first step, after this: they leave the signals to us
        self.request.install()

    def after_train(self) -> None:
        self.request.restore()

    def after_step(self) -> None:
        iteration = self.trainer.iter
        signal_name = self.request.agreed() if iteration + 1 < self.trainer.max_iter else None
        if signal_name:
            name = f"model_{iteration:07d}"
            self.checkpointer.save(name, iteration=iteration)  # rank 0 writes (AtomicCheckpointer)
            comm.synchronize()
            path = os.path.join(self.checkpointer.save_dir, f"{name}.pth")
            raise Stopped(signal_name, f"iteration {iteration + 1}", path, comm.is_main_process())
