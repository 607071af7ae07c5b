"""Lets `python tools/X.py` import the project's packages from the repository root."""
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# first, also when PYTHONPATH already holds it: after tools/, tools/pretrain.py would shadow the package
if sys.path[0] != ROOT:
    sys.path.insert(0, ROOT)

