"""Command-line plumbing the tools share with the task packages that run for them (det/): the exit
codes, config names under configs/, override keys checked against a nested config, and where
`--resume auto` would continue from (for the Ctrl-C message)."""
import os

from common.errors import UserError, unknown_key_message

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # the repository: configs/
# 75: sysexits' EX_TEMPFAIL ("try again later"), what a requeue looks for: `--resume auto` continues the run
EXIT_USER_ERROR, EXIT_INTERRUPTED, EXIT_STOPPED = 2, 130, 75


def resolve_config_path(name):
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
    find = None


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
