"""Checkpoint files: loading with weights_only=True (errors name the file) and atomic writing."""
import argparse
import errno
import os
import pickletools
import re
import shutil
import tempfile
import warnings
from typing import Any

import torch

from .errors import UserError
from .signals import deferred_signals


class CheckpointError(UserError, RuntimeError):
    """A checkpoint that is missing, unreadable, of another model, or cannot be written."""


# What torch names when weights_only=True refuses a pickle for the code or objects it holds: a global (also one of a
# blocked module such as os.system), a function it was asked to call, or a class it was asked to build.
_REFUSED = re.compile(r"GLOBAL (\S+)|call reduce for unrecognized function (.+?)(?: which belongs|$)"
                      r"|but got <class '([^']+)'>", re.MULTILINE)
_OPCODES = {op.code: op for op in pickletools.opcodes}
# the weights of a transformers save_pretrained folder, in the order transformers prefers them
PRETRAINED_WEIGHTS = ("model.safetensors", "pytorch_model.bin")


def load_file(path: str) -> Any:
    """torch.load with weights_only=True; errors name the file. A folder is read as transformers'
    save_pretrained writes it (PRETRAINED_WEIGHTS).

    argparse.Namespace is allowed for this call only: checkpoints written by the official MAE
    training code keep their command line under 'args'.
    """
    if os.path.isdir(path):
        return _load_pretrained_folder(path)
    if not os.path.isfile(path):
        raise CheckpointError(f"checkpoint not found: {path}")
    try:
        with torch.serialization.safe_globals([argparse.Namespace]), warnings.catch_warnings():
            warnings.filterwarnings("ignore", "Detected pickle protocol")  # the error below says it in one line
            return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # unpickling errors carry no file name of their own
        raise CheckpointError(f"cannot load checkpoint {path}{_load_failure(str(e) or type(e).__name__)}") from e


def _load_failure(text):
    """Why torch.load failed, from its error text: a refusal for safety, a pickle protocol weights_only
    does not read (its instructions are not objects), or a file cut short / of another kind."""
    refused = _REFUSED.search(text)
    if refused:
        return (f": it holds objects other than tensors and plain data ({next(g for g in refused.groups() if g)}), "
                f"which loading with weights_only=True refuses for safety (unpickling them could run code); if you "
                f"trust the file, re-save only its tensors (the state dict) with torch.save")
    operand = re.search(r"Unsupported operand (\d+)", text)
    op = _OPCODES.get(chr(int(operand.group(1)))) if operand else None
    if op is not None and op.proto > 2:  # any such file, even one of tensors only (pickle.dump, pickle_protocol=4)
        return (f": it is pickled with protocol {op.proto} or later (instruction {op.name}), which loading with "
                f"weights_only=True does not read; if you trust the file, re-save it with torch.save's default "
                f"protocol")
    tail = text.rpartition("WeightsUnpickler error:")[2]  # after torch's advice on weights_only, its reason
    reason = next((line.strip() for line in tail.splitlines() if line.strip()), text.strip())
    return f" (truncated, or not a torch checkpoint): {reason}"


def _load_pretrained_folder(folder):
    """The weights of a transformers save_pretrained folder; for another folder, which file to pass."""
    for name in PRETRAINED_WEIGHTS:
        path = os.path.join(folder, name)
        if not os.path.isfile(path):
            continue
        if not name.endswith(".safetensors"):
            return load_file(path)
        from safetensors import SafetensorError
        from safetensors.torch import load_file as load_safetensors

        try:
            return load_safetensors(path)
        except SafetensorError as e:
            raise CheckpointError(f"cannot load checkpoint {path} (truncated, or not a safetensors file): {e}") from e
    found = sorted(n for n in os.listdir(folder) if n.endswith((".pth", ".pt", ".bin", ".safetensors", ".pkl")))
    listed = ", ".join(found[:4]) + (", ..." if len(found) > 4 else "")
    files = f"one of its files ({listed})" if found else "a checkpoint file"
    raise CheckpointError(f"{folder} is a folder without {' or '.join(PRETRAINED_WEIGHTS)} (the weights transformers' "
                          f"save_pretrained writes): pass {files}")


def save_file(obj: object, path: str) -> None:
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
