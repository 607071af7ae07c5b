"""mmengine 0.10.7's checkpoints made safe to write and to load.

Writing: mmengine writes a checkpoint in place, so a full disk leaves a corrupt iter_N.pth; local
checkpoints go through common.checkpoint_files.save_file instead (temporary file + rename, a
one-line error).

Loading under torch.load's default weights_only=True (torch >= 2.6), which mmengine does not pass
itself, without turning weights_only off:

- the plain data its checkpoints hold (message-hub history buffers, numpy arrays and scalars) is
  allow-listed by name;
- HistoryBuffer pickles its class-level table of statistics *functions* with every instance,
  which only an allow-listed `getattr` could load (and that would let a checkpoint reach any
  attribute). Its state is written without that table: HistoryBuffer.__setstate__ rebuilds the
  default table on load, as it already does for states that lack it.
"""
import collections

import numpy as np
import torch

from common.checkpoint_files import save_file


def _history_buffer_state(self):
    state = dict(self.__dict__)
    state.pop("statistics_methods", None)
    return state


def allow_mmengine_checkpoints():
    from mmengine.logging.history_buffer import HistoryBuffer

    HistoryBuffer.__getstate__ = _history_buffer_state
    multiarray = np._core.multiarray if hasattr(np, "_core") else np.core.multiarray
    allowed = [HistoryBuffer, collections.OrderedDict, np.ndarray, np.dtype, multiarray._reconstruct, multiarray.scalar]
    allowed += [type(np.dtype(t)) for t in ("float64", "float32", "int64", "int32", "bool")]
    torch.serialization.add_safe_globals(allowed)


def write_checkpoints_atomically():
    import mmengine.runner.runner as runner_module

    mmengine_save = runner_module.save_checkpoint
    if getattr(mmengine_save, "atomic", False):
        return

    def save_checkpoint(checkpoint, filename, file_client_args=None, backend_args=None):
        if file_client_args or backend_args or "://" in str(filename):  # remote storage: mmengine's own writer
            return mmengine_save(checkpoint, filename, file_client_args=file_client_args, backend_args=backend_args)
        save_file(checkpoint, filename)

    save_checkpoint.atomic = True
    runner_module.save_checkpoint = save_checkpoint  # Runner.save_checkpoint calls it by this module-level name
