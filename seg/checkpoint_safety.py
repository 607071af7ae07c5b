"""mmengine 0.10.7's checkpoints made safe to write and to load, with changes that last only as long as
one checkpoint is written or loaded.

Writing: mmengine writes a checkpoint in place, so a full disk leaves a corrupt iter_N.pth; local
checkpoints go through common.checkpoint_files.save_file instead (temporary file + rename, a
one-line error). HistoryBuffer pickles its class-level table of statistics *functions* with every
instance, which only an allow-listed `getattr` could load (and that would let a checkpoint reach any
attribute): while a checkpoint is written (history_buffers_without_functions) its state leaves that
table out, and HistoryBuffer.__setstate__ rebuilds the default table on load, as it already does for
states that lack it.

Loading under torch.load's default weights_only=True (torch >= 2.6), which mmengine does not pass
itself, without turning weights_only off: the plain data its checkpoints hold (message-hub history
buffers, numpy arrays and scalars) is allow-listed by name while mmengine loads a checkpoint
(mmengine_checkpoint_globals around its _load_checkpoint); a caller that reads an mmengine
checkpoint with common.checkpoint_files.load_file uses the same context.

write_checkpoints_atomically() and load_checkpoints_safely() install the two wrappers in mmengine's
runner (importing seg does); nothing else of mmengine or torch is changed for the whole process.
"""
from __future__ import annotations

import collections
import contextlib
import importlib
from collections.abc import Iterator

import numpy as np
import torch

from common.checkpoint_files import save_file


def _history_buffer_state(self):
    state = dict(self.__dict__)
    state.pop("statistics_methods", None)
    return state


@contextlib.contextmanager
def history_buffers_without_functions() -> Iterator[None]:
    """While open, HistoryBuffer instances pickle without their table of statistics functions."""
    from mmengine.logging.history_buffer import HistoryBuffer

    original = HistoryBuffer.__dict__.get("__getstate__")
    HistoryBuffer.__getstate__ = _history_buffer_state
    try:
        yield
    finally:
        if original is None:
            del HistoryBuffer.__getstate__
        else:
            HistoryBuffer.__getstate__ = original


def mmengine_checkpoint_globals() -> torch.serialization.safe_globals:
    """A context in which torch.load(weights_only=True) accepts the plain data of mmengine's checkpoints."""
    from mmengine.logging.history_buffer import HistoryBuffer

    multiarray = importlib.import_module("numpy._core.multiarray" if hasattr(np, "_core") else "numpy.core.multiarray")
    allowed = [HistoryBuffer, collections.OrderedDict, np.ndarray, np.dtype, multiarray._reconstruct, multiarray.scalar]
    allowed += [type(np.dtype(t)) for t in ("float64", "float32", "int64", "int32", "bool")]
    return torch.serialization.safe_globals(allowed)


def write_checkpoints_atomically() -> None:
    """Runner.save_checkpoint writes through save_file (local files), without HistoryBuffer's functions."""
    import mmengine.runner.runner as runner_module

    mmengine_save = runner_module.save_checkpoint
    if getattr(mmengine_save, "atomic", False):
        return

    def save_checkpoint(checkpoint, filename, file_client_args=None, backend_args=None):
        with history_buffers_without_functions():
            if file_client_args or backend_args or "://" in str(filename):  # remote storage: mmengine's own writer
                return mmengine_save(checkpoint, filename, file_client_args=file_client_args, backend_args=backend_args)
            save_file(checkpoint, filename)
        return None

    save_checkpoint.atomic = True  # type: ignore[attr-defined]  # a marker on the function object
    runner_module.save_checkpoint = save_checkpoint  # Runner.save_checkpoint calls it by this module-level name


def load_checkpoints_safely() -> None:
    """mmengine's _load_checkpoint (resuming, load_from, its load_checkpoint) runs in mmengine_checkpoint_globals."""
    import mmengine.runner.checkpoint as checkpoint_module
    import mmengine.runner.runner as runner_module

    mmengine_load = checkpoint_module._load_checkpoint
    if getattr(mmengine_load, "safe_globals", False):
        return

    def _load_checkpoint(filename, map_location=None, logger=None):
        with mmengine_checkpoint_globals():
            return mmengine_load(filename, map_location=map_location, logger=logger)

    _load_checkpoint.safe_globals = True  # type: ignore[attr-defined]  # a marker on the function object
    # the checkpoint module's own callers (load_checkpoint, ...) and Runner.load_checkpoint, which imported the name
    checkpoint_module._load_checkpoint = _load_checkpoint
    runner_module._load_checkpoint = _load_checkpoint
