"""User mistakes as opposed to bugs: the tools report a UserError as one line `error: ...` and
exit code 2 (common/cli.py); anything else keeps its traceback."""
import difflib
from collections.abc import Iterable


class UserError(Exception):
    """A mistake the user can fix: the message names the file, key or setting and says what to do."""


def unknown_key_message(what: str, key: str, known: Iterable[str]) -> str:
    """'unknown <what> 'key'; did you mean ...?' with the closest known names (or all of a short list)."""
    known = sorted(set(known))
    close = difflib.get_close_matches(key, known, n=3, cutoff=0.6)
    if close:
        hint = "did you mean " + " or ".join(repr(k) for k in close) + "?"
    elif len(known) <= 40:
        hint = "known: " + ", ".join(known)
    else:
        hint = "no close match among its known keys"
    return f"unknown {what} {key!r}; {hint}"
