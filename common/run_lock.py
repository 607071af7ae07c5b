"""A run owns its output folder while it runs: OUTPUT_DIR/.run.lock holds an exclusive flock and
says who holds it (host, pid, start time). A second run into the folder stops with one line naming
the owner. The lock goes with its process (the kernel drops a flock when the process ends, even when
killed), so a lock file left by a killed run is taken over, and the take-over is reported."""
import contextlib
import datetime
import fcntl
import os
import socket
from collections.abc import Callable, Iterator

from .errors import UserError

LOCK_NAME = ".run.lock"


@contextlib.contextmanager
def owned_output_dir(folder: str, log: Callable[[str], object] = print) -> Iterator[None]:
    """Holds OUTPUT_DIR's lock inside the block, or raises UserError naming the process that holds it.
    Only one process of a multi-process run takes it (global rank 0, or the launching process)."""
    folder = os.path.abspath(folder)
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, LOCK_NAME)
    fd = _lock(path)
    previous = os.pread(fd, 4096, 0).decode(errors="replace").strip()
    if previous:
        log(f"took over {path}, left by a run that no longer holds it ({previous})")
    os.ftruncate(fd, 0)
    started = datetime.datetime.now().isoformat(timespec="seconds")
    os.pwrite(fd, f"host {socket.gethostname()}, pid {os.getpid()}, since {started}\n".encode(), 0)
    try:
        yield
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.remove(path)  # while still locked: a run that opened the old file sees it replaced and re-opens
        os.close(fd)


def _lock(path):
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            owner = os.pread(fd, 4096, 0).decode(errors="replace").strip() or "another process"
            os.close(fd)
            raise UserError(f"{os.path.dirname(path)} is in use by another run ({owner}; lock file {path}): wait for "
                            f"it to end, or give this run another output folder") from None
        try:  # the owner's exit may have removed the file between our open and flock
            if os.stat(path).st_ino == os.fstat(fd).st_ino:
                return fd
        except FileNotFoundError:
            pass
        os.close(fd)
