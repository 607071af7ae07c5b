"""Task-neutral plumbing on the ground floor, beside backbones/ (the model): user errors, config files
and overrides, the command-line contract, checkpoint files, image reading and batching, and the
training-loop pieces that pre-training and classification share. Imports nothing of the project.

`python tools/X.py` puts tools/ first on sys.path, where tools/pretrain.py stands in for the
pretrain package. Every package imports this one first, so such a process starts again here (the
same pid, for torchrun and SLURM) in Python's safe-path mode (-P), which leaves the script's folder
out; the packages are the installed ones (pip install -e ., scripts/setup.sh)."""
import os as _os
import sys as _sys

_TOOLS_DIR = _os.path.join(_os.path.dirname(_os.path.dirname(_os.path.abspath(__file__))), "tools")
if not _sys.flags.safe_path and _sys.path and _os.path.abspath(_sys.path[0] or ".") == _TOOLS_DIR:
    _os.execv(_sys.executable, [_sys.executable, "-P", *_sys.orig_argv[1:]])
