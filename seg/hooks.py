"""mmengine hooks of the project's training loop."""
from __future__ import annotations

from typing import TYPE_CHECKING

from mmengine.dist import barrier
from mmengine.hooks import CheckpointHook, Hook
from mmseg.registry import HOOKS

from common.signals import Stopped

if TYPE_CHECKING:
    from mmengine.runner import Runner

    from common.signals import StopRequest


@HOOKS.register_module()
class FinalValidation(Hook):
    """Keeps the metrics of the latest validation and the iteration it ran at."""
    metrics: dict[str, float] | None = None
    iteration: int | None = None

    def after_val_epoch(self, runner: Runner, metrics: dict[str, float] | None = None) -> None:
        self.metrics, self.iteration = metrics, runner.iter


class StopAtSignal(Hook):
    """A stop request (common/signals.StopRequest) ends training after the iteration at which every rank
    agrees on it: the run's CheckpointHook saves that iteration as at its interval (iter_N.pth, the
    last_checkpoint pointer; rank 0 writes, atomically: checkpoint_safety.py), every rank waits for the
    file, then Stopped. The lowest priority: after the scheduler's and the checkpoint hook's step.

    The caller installs the request (`with StopRequest() as request:` around runner.train()): the Runner
    starts its data workers before any hook runs, and only workers started inside the block leave the
    signals to the training process."""

    priority = "LOWEST"

    def __init__(self, request: StopRequest) -> None:
        self.request = request

    def after_train_iter(self, runner: Runner, batch_idx: int, data_batch: dict | tuple | list | None = None,
                         outputs: dict | None = None) -> None:
        signal_name = self.request.agreed()
        if signal_name:
            checkpoints = next(hook for hook in runner.hooks if isinstance(hook, CheckpointHook))
            checkpoints._save_checkpoint(runner)  # mmengine 0.10's, as its after_train_iter saves
            barrier()
            raise Stopped(signal_name, f"iteration {runner.iter + 1}", checkpoints.last_ckpt, runner.rank == 0)
