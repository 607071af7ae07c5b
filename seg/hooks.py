"""mmengine hooks of the project's training loop."""
from mmengine.dist import barrier
from mmengine.hooks import CheckpointHook, Hook
from mmseg.registry import HOOKS

from common.signals import Stopped


@HOOKS.register_module()
class FinalValidation(Hook):
    """Keeps the metrics of the latest validation and the iteration it ran at."""
    metrics, iteration = None, None

    def after_val_epoch(self, runner, metrics=None):
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

    def __init__(self, request):
        self.request = request

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        signal_name = self.request.agreed()
        if signal_name:
            checkpoints = next(hook for hook in runner.hooks if isinstance(hook, CheckpointHook))
            checkpoints._save_checkpoint(runner)  # mmengine 0.10's, as its after_train_iter saves
            barrier()
            raise Stopped(signal_name, f"iteration {runner.iter + 1}", checkpoints.last_ckpt, runner.rank == 0)
