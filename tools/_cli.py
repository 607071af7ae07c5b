"""What the tools share at their edges: a user's mistake ends as ONE line `error: ...` on stderr with
exit code 2 (`--debug` shows the traceback instead); Ctrl-C ends with one line saying which
checkpoint `--resume auto` continues from; a stop request (SIGTERM, SIGUSR1, SIGUSR2: a time limit or
preemption, common/signals.py) ends training at a step boundary after its checkpoint is written, with
one line saying where and exit code 75; real bugs keep their tracebacks."""
import argparse
import contextlib
import re
import sys

from _bootstrap import resolve_config_path  # noqa: F401  (also puts the repository root on sys.path)

from common.config import within
from common.errors import UserError, unknown_key_message
from common.signals import Stopped

# 75: sysexits' EX_TEMPFAIL ("try again later"), what a requeue looks for: `--resume auto` continues the run
EXIT_USER_ERROR, EXIT_INTERRUPTED, EXIT_STOPPED = 2, 130, 75


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


class ResumePoint:
    """Where `--resume auto` would continue from, for the Ctrl-C message; a tool sets `find` once it
    knows its output directory (a function returning the checkpoint path, or None)."""
    find = None


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


def check_override_keys(cfg, keys, accepts):
    """Rejects dotted override keys that name nothing in a nested config (dicts and lists), listing
    close matches. A new key is accepted where its parent is built from a class or function that
    takes that argument: accepts(node) gives the callable a node builds (or None)."""
    for key in keys:
        node, parts = cfg, key.split(".")
        for depth, part in enumerate(parts):
            if isinstance(node, (list, tuple)) or _is_sequence(node):
                if not (part.isdigit() and int(part) < len(node)):
                    raise UserError(f"override {key!r}: {'.'.join(parts[:depth])} is a list of {len(node)}; "
                                    f"{part!r} is not one of its indexes")
                node = node[int(part)]
                continue
            if not hasattr(node, "keys"):
                raise UserError(f"override {key!r}: {'.'.join(parts[:depth])} is a value, not a group of settings")
            if part in node.keys():
                node = node[part]
                continue
            if depth == len(parts) - 1 and _takes_argument(accepts(node), part):
                break
            raise UserError(unknown_key_message("override key", key, _dotted_keys(cfg)))


def _is_sequence(node):
    return type(node).__name__ == "ListConfig"  # OmegaConf's list (Detectron2's LazyConfig)


def _takes_argument(fn, name):
    import inspect

    if fn is None:
        return False
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False
    return name in params or any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())


def _dotted_keys(node, prefix=""):
    keys = []
    if hasattr(node, "keys"):
        for k in node.keys():
            keys.append(prefix + str(k))
            keys += _dotted_keys(node[k], f"{prefix}{k}.")
    return keys
