"""What the tools share at their edges: a user's mistake ends as ONE line `error: ...` on stderr with
exit code 2 (`--debug` shows the traceback instead); Ctrl-C ends with one line saying which
checkpoint `--resume auto` continues from; a stop request (SIGTERM, SIGUSR1, SIGUSR2: a time limit or
preemption, common/signals.py) ends training at a step boundary after its checkpoint is written, with
one line saying where and exit code 75; real bugs keep their tracebacks."""
import argparse
import contextlib
import re
import sys

import _bootstrap  # noqa: F401  (puts the repository root on sys.path)

# the tools' plumbing that det/ runs too lives in common/cli.py (a package imports no tools code)
from common.cli import (EXIT_INTERRUPTED, EXIT_STOPPED, EXIT_USER_ERROR, ResumePoint,  # noqa: F401
                        check_override_keys, resolve_config_path)
from common.config import within
from common.errors import UserError
from common.signals import Stopped


class ArgumentParser(argparse.ArgumentParser):
    """argparse with `--debug`, whose usage mistakes are UserErrors (one line, like every other)."""

    def __init__(self, **kwargs):
        super().__init__(formatter_class=argparse.RawDescriptionHelpFormatter, **kwargs)
        self.add_argument("--debug", action="store_true", help="show the Python traceback of an error")

    def error(self, message):
        raise UserError(f"{message} (see {self.prog} --help)")


def number_in(interval, kind=int):
    """argparse type: a number of `kind` in an interval such as "[1, inf)"."""
    def parse(text):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a{'n integer' if kind is int else ' number'}") from None
        if not within(value, interval):
            raise argparse.ArgumentTypeError(f"{text} is out of range: it must be in {interval}")
        return value
    return parse


def resume_value(text):
    """argparse type of --resume: 'auto' or a checkpoint (an override right after a bare --resume is
    neither)."""
    if "=" in text:
        raise argparse.ArgumentTypeError(f"{text!r} is an override, not 'auto' or a checkpoint: write --resume auto {text}")
    return text


def one_line(error):
    """An error's message on one line. An exception re-raised from a DataLoader worker carries the
    worker's traceback as text: its last line is the message."""
    text = str(error).strip() or type(error).__name__
    if "Traceback (most recent call last)" in text:
        text = re.sub(r"^[\w.]+: ", "", text.splitlines()[-1].strip())
    return " ".join(line.strip() for line in text.splitlines() if line.strip())


@contextlib.contextmanager
def setup_checks():
    """Before training starts a ValueError comes from a setting or an input file (the messages name
    them): the user's to fix."""
    try:
        yield
    except ValueError as e:
        raise UserError(one_line(e)) from e


def run(main, argv=None):
    """Runs main(argv) and turns user mistakes, Ctrl-C and stop requests into one line and an exit code."""
    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        main(argv)
    except (UserError, FileNotFoundError) as e:
        if "--debug" in argv:
            raise
        print(f"error: {one_line(e)}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        checkpoint = ResumePoint.find() if ResumePoint.find else None
        where = f"--resume auto continues from {checkpoint}" if checkpoint else "no checkpoint was written yet"
        print(f"error: interrupted (Ctrl-C); {where}", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Stopped as e:
        if str(e):  # global rank 0's
            print(f"error: {e}", file=sys.stderr)
        return EXIT_STOPPED
    return 0
