"""The command-line contract of every tool, defined once (as Detectron2's default_argument_parser):

- the training tools' options (`training_parser`): --cfg, --init CKPT|none, --output-dir,
  --resume [auto|CKPT], --eval-only [CKPT], --results-csv, --debug and key=value overrides; a tool
  that has no use for one refuses it by name, never ignores it;
- a user's mistake ends as ONE line `error: ...` on stderr with exit code 2 (`--debug` shows the
  traceback instead); Ctrl-C ends with one line saying which checkpoint `--resume auto` continues
  from; a stop request (SIGTERM, SIGUSR1, SIGUSR2: a time limit or preemption, common/signals.py)
  ends training at a step boundary after its checkpoint is written, with one line saying where and
  exit code 75; real bugs keep their tracebacks;
- config names under configs/, override keys checked against a nested config, and the one check
  that a training run has something to start from."""
import argparse
import contextlib
import inspect
import os
import re
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, NoReturn

from .config import within
from .errors import UserError, unknown_key_message
from .project import ROOT
from .signals import Stopped

# 75: sysexits' EX_TEMPFAIL ("try again later"), what a requeue looks for: `--resume auto` continues the run
EXIT_USER_ERROR, EXIT_INTERRUPTED, EXIT_STOPPED = 2, 130, 75
NO_INIT = "none"  # --init none: random weights; also what every results file records for a run without init


class ArgumentParser(argparse.ArgumentParser):
    """argparse with `--debug`, whose usage mistakes are UserErrors (one line, like every other).
    refused: {option: why this tool has none} for options of the shared contract a tool cannot honour."""

    def __init__(self, refused: dict[str, str] | None = None, **kwargs: Any) -> None:
        super().__init__(formatter_class=argparse.RawDescriptionHelpFormatter, **kwargs)
        self.add_argument("--debug", action="store_true", help="show the Python traceback of an error")
        self.refused = dict(refused or {})

    def error(self, message: str) -> NoReturn:
        raise UserError(f"{message} (see {self.prog} --help)")

    def parse_intermixed_args(self, args: Sequence[str] | None = None,  # type: ignore[override]
                              namespace: argparse.Namespace | None = None) -> argparse.Namespace:
        parsed = super().parse_intermixed_args(args, namespace)
        for option, why in self.refused.items():
            dest = option.lstrip("-").replace("-", "_")
            if getattr(parsed, dest, None) not in (None, [], False):
                name = option if option.startswith("-") else "key=value overrides"
                raise UserError(f"{self.prog} takes no {name}: {why}")
        return parsed


def training_parser(description: str, refused: dict[str, str] | None = None) -> ArgumentParser:
    """The options every training tool takes (tools/pretrain.py, train_cls.py, train_det.py,
    train_seg.py, train_dvae.py); refused: {option: why} for those the tool has no use for (given, they
    end in one line naming the option, exit 2). `overrides` as an option name refuses key=value."""
    refused = dict(refused or {})
    parser = ArgumentParser(refused=refused, description=description)

    def add(option: str, **kwargs: Any) -> None:  # a refused option stays out of --help
        if option in refused:
            kwargs["help"] = argparse.SUPPRESS
            if "required" in kwargs:
                kwargs["required"] = False
        parser.add_argument(option, **kwargs)

    add("--cfg", required=True, help="config file (path or name under configs/)")
    add("--init", metavar="CKPT|none", help="checkpoint to start from (an MAE pre-training's, tools/pretrain.py's or "
                                            "official); 'none' trains from random weights")
    add("--output-dir", help="the run's folder: checkpoints, logs, results.csv")
    add("--resume", nargs="?", const="auto", type=checkpoint_or_auto("--resume"), metavar="auto|CKPT",
        help="continue from the output dir's last checkpoint (auto, also a bare --resume) or from CKPT")
    add("--eval-only", nargs="?", const="auto", type=checkpoint_or_auto("--eval-only"), metavar="CKPT",
        help="evaluate a checkpoint and record it (a bare --eval-only: the output dir's last one)")
    add("--results-csv", help="where result rows go (default: OUTPUT_DIR/results.csv)")
    add("overrides", nargs="*", help="config overrides: key=value (dotted keys for nested settings)")
    return parser


def require_start(init: str | None, resumable: bool, resume: str | None, looked_in: str, also: str = "") -> None:
    """A training run starts from --init CKPT, from random weights (--init none, said explicitly), or
    from a checkpoint it resumes; with none of them it is refused before anything is built. looked_in:
    where --resume auto looked (the output dir, or its checkpoint file); also: the tool's other ways."""
    if init or resumable:
        return
    found = f", and --resume auto found no checkpoint in {looked_in}" if resume == "auto" else ""
    raise UserError(f"no initial checkpoint was given{found}: pass --init CHECKPOINT (an MAE checkpoint), or "
                    f"--init {NO_INIT} to train from random weights{also}")


def init_for_results(init: str | None, evaluating: bool) -> str:
    """What a results row records as the run's start: the checkpoint, NO_INIT for training from random
    weights, "" (not known) for an evaluation given no --init."""
    return init or ("" if evaluating else NO_INIT)


def number_in(interval: str, kind: Callable[[str], float] = int) -> Callable[[str], float]:
    """argparse type: a number of `kind` in an interval such as "[1, inf)"."""
    def parse(text: str) -> float:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a{'n integer' if kind is int else ' number'}") from None
        if not within(value, interval):
            raise argparse.ArgumentTypeError(f"{text} is out of range: it must be in {interval}")
        return value
    return parse


def checkpoint_or_auto(option: str) -> Callable[[str], str]:
    """argparse type of --resume and --eval-only: 'auto' or a checkpoint (an override right after the bare
    option is neither)."""
    def parse(text: str) -> str:
        if "=" in text:
            raise argparse.ArgumentTypeError(f"{text!r} is an override, not 'auto' or a checkpoint: write {option} auto "
                                             f"{text}")
        return text
    return parse


def one_line(error: BaseException) -> str:
    """An error's message on one line. An exception re-raised from a DataLoader worker carries the
    worker's traceback as text: its last line is the message."""
    text = str(error).strip() or type(error).__name__
    if "Traceback (most recent call last)" in text:
        text = re.sub(r"^[\w.]+: ", "", text.splitlines()[-1].strip())
    return " ".join(line.strip() for line in text.splitlines() if line.strip())


@contextlib.contextmanager
def setup_checks() -> Iterator[None]:
    """Before training starts a ValueError comes from a setting or an input file (the messages name
    them): the user's to fix."""
    try:
        yield
    except ValueError as e:
        raise UserError(one_line(e)) from e


def run(main: Callable[[list[str]], object], argv: Iterable[str] | None = None) -> int:
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


def resolve_config_path(name: str) -> str:
    """A path, or a name under configs/ (e.g. pretrain/mae_vit_base.py)."""
    if os.path.isfile(name):
        return name
    candidate = os.path.join(ROOT, "configs", name)
    if os.path.isfile(candidate):
        return candidate
    raise FileNotFoundError(f"config {name!r} is neither a file nor a name under {os.path.join(ROOT, 'configs')}")


class ResumePoint:
    """Where `--resume auto` would continue from, for the Ctrl-C message; a tool sets `find` once it
    knows its output directory (a function returning the checkpoint path, or None)."""
    find: Callable[[], str | None] | None = None


def check_override_keys(cfg: Any, keys: Iterable[str], accepts: Callable[[Any], Callable[..., Any] | None]) -> None:
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
