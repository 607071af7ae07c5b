"""Checkpoint files: loading with weights_only=True (errors name the file) and atomic writing."""
import argparse
import errno
import os
import re
import shutil
import tempfile

import torch

from .errors import UserError
from .signals import deferred_signals


class CheckpointError(UserError, RuntimeError):
    """A checkpoint that is missing, unreadable, of another model, or cannot be written."""


def load_file(path):
    """torch.load with weights_only=True; errors name the file.

    argparse.Namespace is allowed for this call only: checkpoints written by the official MAE
    training code keep their command line under 'args'.
    """
    if not os.path.isfile(path):
        raise CheckpointError(f"checkpoint not found: {path}")
    try:
        with torch.serialization.safe_globals([argparse.Namespace]):
            return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # unpickling errors carry no file name of their own
        refused = re.search(r"Unsupported global: GLOBAL (\S+)", str(e))
        if refused:
            raise CheckpointError(f"cannot load checkpoint {path} with weights_only=True: it holds a {refused.group(1)} "
                                  f"object, not only tensors and plain data") from e
        reason = next((line.strip() for line in str(e).splitlines() if line.strip()), type(e).__name__)
        raise CheckpointError(f"cannot load checkpoint {path} (truncated, or not a torch checkpoint): {reason}") from e


def save_file(obj, path):
    """Atomic save: a temporary file in the same folder, fsync, then rename over the target. A failed
    write (a full disk) raises CheckpointError and leaves the existing files as they were; Ctrl-C or
    SIGTERM during the write takes effect once the checkpoint is complete."""
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    with deferred_signals():
        fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".pth", dir=folder)
        os.close(fd)
        try:
            # a path, not a Python file object: torch's C++ writer then never calls back into Python, where
            # an interrupt left it writing to a closed file from its destructor (SIGABRT)
            torch.save(obj, tmp)
            with open(tmp, "rb") as f:
                os.fsync(f.fileno())
            os.chmod(tmp, 0o666 & ~_umask())  # mkstemp creates 0600; a checkpoint gets a normal file's mode
            os.replace(tmp, path)
        except BaseException as e:
            # torch reports a failed write as a RuntimeError
            reason = _write_failure(e, folder, tmp) if isinstance(e, (OSError, RuntimeError)) else None
            if os.path.exists(tmp):
                os.remove(tmp)
            if reason:
                raise CheckpointError(f"cannot write checkpoint {path}: {reason}; the files already in {folder} are "
                                      f"untouched: free space there, then continue with --resume auto") from e
            raise


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _write_failure(error, folder, tmp):
    """The OS's reason for a failed write. torch's C++ writer reports none ("unexpected pos"), so
    writing to the same file once more finds it (a full disk, a file-size limit)."""
    while error is not None:
        if isinstance(error, OSError) and error.errno is not None:
            return _reason(error.errno)
        error = error.__cause__ or error.__context__
    try:
        with open(tmp, "ab") as f:
            f.write(bytes(2**20))
            f.flush()
            os.fsync(f.fileno())
    except OSError as e:
        if e.errno is not None:
            return _reason(e.errno)
    if shutil.disk_usage(folder).free < 64 * 2**20:
        return _reason(errno.ENOSPC)
    return "the write failed"


def _reason(number):
    return "no space left on the device" if number == errno.ENOSPC else os.strerror(number).lower()
