"""The console scripts (pyproject.toml's [project.scripts]): each runs its tools/ script as
`python tools/X.py` does, from the checkout the editable install points to (scripts/setup.sh)."""
import runpy
import sys
from collections.abc import Callable

from .project import tool_path


def _script(name: str) -> Callable[[], None]:
    def main() -> None:
        sys.argv[0] = tool_path(f"{name}.py")  # the tool's --help names itself
        runpy.run_path(sys.argv[0], run_name="__main__")  # a file: sys.path is left as it is
    main.__name__ = name
    return main


pretrain = _script("pretrain")
train_cls = _script("train_cls")
train_det = _script("train_det")
train_seg = _script("train_seg")
train_dvae = _script("train_dvae")
reproduce = _script("reproduce")
visualize_mae = _script("visualize_mae")
sweep = _script("sweep")
submit = _script("submit")
make_toy_data = _script("make_toy_data")
