"""Lets `python tools/X.py` import the project's packages from the repository root."""
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# first, also when PYTHONPATH already holds it: after tools/, tools/pretrain.py would shadow the package
if sys.path[0] != ROOT:
    sys.path.insert(0, ROOT)


def resolve_config_path(name):
    """A path, or a name under configs/ (e.g. pretrain/mae_vit_base.py)."""
    if os.path.isfile(name):
        return name
    candidate = os.path.join(ROOT, "configs", name)
    if os.path.isfile(candidate):
        return candidate
    raise FileNotFoundError(f"config {name!r} is neither a file nor a name under {os.path.join(ROOT, 'configs')}")
