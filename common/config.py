"""Config files as plain Python: a file defines `config = SomeConfig(...)` (a dataclass), `derive`
makes a neighbour with some fields changed, and key=value overrides are checked against the fields
(and, for dict fields, against the arguments of what they are passed to); `check_ranges` checks a
config's settings against the intervals and choices its class declares."""
import ast
import dataclasses
import inspect
import os
import runpy
from collections.abc import Iterable
from typing import Any

from .errors import UserError, unknown_key_message


def load_config(path: str, config_class: type, overrides: Iterable[str] = ()) -> Any:
    """Runs a config file (it must define `config = <config_class>(...)`, a dataclass) and applies
    key=value overrides, each parsed as a Python literal when it is one."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"config file not found: {path}")
    cfg = runpy.run_path(path).get("config")
    if not isinstance(cfg, config_class):
        raise UserError(f"{path} must define `config = {config_class.__name__}(...)`")
    return apply_overrides(cfg, overrides)


def apply_overrides(cfg: Any, overrides: Iterable[str]) -> Any:
    names = {f.name: f for f in dataclasses.fields(cfg)}
    changes: dict[str, Any] = {}
    for item in overrides:
        key, raw = split_override(item)
        group, dot, sub = key.partition(".")
        if dot and isinstance(getattr(cfg, group, None), dict):  # e.g. model_overrides.depth=6
            _check_arguments(cfg, group, [sub])
            changes.setdefault(group, dict(getattr(cfg, group)))[sub] = _literal(raw)
            continue
        if key not in names:
            raise UserError(unknown_key_message("config key", key, names))
        value = _literal(raw)
        default = getattr(cfg, key)
        if isinstance(default, float) and isinstance(value, int):
            value = float(value)
        if isinstance(default, tuple) and isinstance(value, list):
            value = tuple(value)
        if default is not None and not isinstance(value, type(default)):
            raise UserError(f"config key {key!r} expects {type(default).__name__}, got {raw!r}")
        if isinstance(value, dict):  # e.g. model_overrides={'depth': 6}
            _check_arguments(cfg, key, value)
        changes[key] = value
    return dataclasses.replace(cfg, **changes)


def _check_arguments(cfg, group, keys):
    arguments = _arguments(cfg.argument_groups[group]())
    for key in keys:
        if key not in arguments:
            raise UserError(unknown_key_message(f"{group} argument", key, arguments))


def _arguments(fn):
    """The keyword arguments fn takes, its classes' bases' included where it passes **kwargs on."""
    names = set()
    for cls in (fn.__mro__ if isinstance(fn, type) else (fn,)):
        init = cls.__init__ if isinstance(cls, type) else cls
        if init is object.__init__:
            continue
        params = inspect.signature(init).parameters
        names |= {n for n, p in params.items() if n != "self" and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
        if not any(p.kind is p.VAR_KEYWORD for p in params.values()):
            break
    return names


def split_override(item: str) -> tuple[str, str]:
    """key=value -> (key, the value's text)."""
    key, sep, raw = item.partition("=")
    if not sep:
        raise UserError(f"override {item!r} is not key=value")
    return key, raw


def literal(raw: str) -> Any:
    """A Python literal, dict(name=value, ...) included (mmengine configs write dicts so); else
    ValueError or SyntaxError."""
    return ast.literal_eval(_DictCalls().visit(ast.parse(raw.lstrip(" \t"), mode="eval")))


class _DictCalls(ast.NodeTransformer):
    def visit_Call(self, node: ast.Call) -> ast.AST:
        self.generic_visit(node)
        if isinstance(node.func, ast.Name) and node.func.id == "dict" and not node.args and all(k.arg for k in node.keywords):
            return ast.Dict(keys=[ast.Constant(k.arg) for k in node.keywords], values=[k.value for k in node.keywords])
        return node


def _literal(raw):
    try:
        return literal(raw)
    except (ValueError, SyntaxError):
        return raw


def check_ranges(cfg: Any) -> None:
    """Every setting named in the config class's `ranges` ({name: "[low, high)"}, interval notation,
    inf allowed; a tuple's items each) lies in its interval, and every one in its `choices` ({name: (the
    values it takes)}) is one of them; else one line naming it and what it must be."""
    for name, interval in type(cfg).ranges.items():
        value = getattr(cfg, name)
        items = value if isinstance(value, (tuple, list)) else (value,)
        if value is not None and not all(within(item, interval) for item in items):
            raise UserError(f"{name}={value!r} is out of range: it must be in {interval}")
    for name, options in getattr(type(cfg), "choices", {}).items():
        if getattr(cfg, name) not in options:
            raise UserError(f"{name}={getattr(cfg, name)!r} is not a choice: it must be one of "
                            f"{', '.join(map(repr, options))}")


def within(value: float, interval: str) -> bool:
    """value in an interval written "[low, high)" (inf allowed)."""
    low, high = (float(bound) for bound in interval[1:-1].split(","))
    above = low <= value if interval[0] == "[" else low < value
    below = value <= high if interval[-1] == "]" else value < high
    return above and below


def derive(base_file: str, **changes: Any) -> Any:
    """A config file's neighbour with some fields changed (configs inherit as plain Python)."""
    return dataclasses.replace(runpy.run_path(base_file)["config"], **changes)
