"""Checkpoint files: loading with weights_only=True (errors name the file) and atomic writing."""
import argparse
import errno
import os
import re
import shutil
import tempfile

import torch

from .errors import UserError


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
    write (a full disk) raises CheckpointError and leaves the existing files as they were."""
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".pth", dir=folder)
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(obj, f)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp creates 0600; a checkpoint gets a normal file's mode
        os.replace(tmp, path)
    except BaseException as e:
        if os.path.exists(tmp):
            os.remove(tmp)
        if isinstance(e, (OSError, RuntimeError)):  # torch reports a failed write as a RuntimeError
            raise CheckpointError(f"cannot write checkpoint {path}: {_write_failure(e, folder)}; the files already "
                                  f"in {folder} are untouched: free space there, then continue with --resume auto") from e
        raise


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _write_failure(error, folder):
    """The OS's reason for a failed write, also when torch wrapped it in a RuntimeError."""
    while error is not None:
        if isinstance(error, OSError) and error.errno is not None:
            return "no space left on the device" if error.errno == errno.ENOSPC else os.strerror(error.errno).lower()
        error = error.__cause__ or error.__context__
    if shutil.disk_usage(folder).free < 64 * 2**20:
        return "no space left on the device"
    return "the write failed"
