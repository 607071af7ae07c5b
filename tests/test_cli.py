"""The command-line contract (common/cli.py) as users meet it: every training tool takes the same
options, refuses by name the ones it has no use for, and runs as `python tools/X.py` and as an
installed console script from anywhere."""
import os
import shutil
import subprocess
import sys

import pytest
from conftest import ROOT, user_error

from common.project import TOOLS

SHARED = ("--cfg", "--init", "--output-dir", "--resume", "--eval-only", "--results-csv", "--debug")
# the options each tool refuses, with why (tools/pretrain.py's and train_dvae.py's REFUSED)
REFUSED = {"pretrain": ("--init", "--eval-only", "--results-csv"),
           "dvae": ("--cfg", "--init", "--eval-only", "--results-csv")}


def help_text(script):
    result = subprocess.run([sys.executable, os.path.join(ROOT, "tools", script), "--help"], capture_output=True,
                            text=True, cwd="/")
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


@pytest.mark.parametrize("kind", sorted(TOOLS))
def test_every_training_tool_takes_the_shared_options(kind):
    text = help_text(TOOLS[kind].script)
    refused = REFUSED.get(kind, ())
    assert all(option in text for option in SHARED if option not in refused)
    assert not any(f"[{option} " in text or f" {option} " in text.split("options:")[-1] for option in refused)
    assert ("[auto|CKPT]" in text) and ("--results-csv" in text) == TOOLS[kind].results_csv


@pytest.mark.parametrize("script, args, named", [
    ("pretrain.py", ["--cfg", "pretrain/mae_vit_tiny_cpu.py", "--eval-only"], "takes no --eval-only"),
    ("pretrain.py", ["--cfg", "pretrain/mae_vit_tiny_cpu.py", "--init", "x.pth"], "takes no --init"),
    ("train_dvae.py", ["--data", "d", "--output-dir", "o", "epochs=3"], "takes no key=value overrides"),
    ("train_dvae.py", ["--data", "d", "--output-dir", "o", "--results-csv", "r.csv"], "takes no --results-csv"),
])
def test_an_option_a_tool_has_no_use_for_is_refused_by_name(script, args, named):
    assert named in user_error(script, *args)


def test_resume_takes_auto_or_a_checkpoint_and_never_an_override():
    line = user_error("pretrain.py", "--cfg", "pretrain/mae_vit_tiny_cpu.py", "--resume", "epochs=3")
    assert "'epochs=3' is an override" in line and "--resume auto epochs=3" in line


def test_console_scripts_run_from_outside_the_checkout():
    bin_dir = os.path.dirname(sys.executable)
    for name in ("mae-pretrain", "mae-train-cls", "mae-train-det", "mae-train-seg", "mae-train-dvae", "mae-reproduce",
                 "mae-visualize", "mae-sweep", "mae-submit"):
        script = shutil.which(name, path=bin_dir)
        assert script, f"{name} is not installed in {bin_dir} (scripts/setup.sh: pip install -e .)"
    result = subprocess.run([os.path.join(bin_dir, "mae-train-cls"), "--help"], capture_output=True, text=True, cwd="/")
    assert result.returncode == 0 and "usage: train_cls.py" in result.stdout, result.stderr[-3000:]


def test_the_packages_are_installed_and_nothing_named_tools_or_tests_is():
    code = ("import importlib.util as u, pretrain, common; "
            "print(pretrain.__file__, common.__file__, u.find_spec('tools'), u.find_spec('tests'), sep=chr(10))")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}  # as a user's shell has it
    result = subprocess.run([sys.executable, "-P", "-c", code], capture_output=True, text=True, cwd="/", env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    pretrain_file, common_file, tools_spec, tests_spec = result.stdout.splitlines()
    assert pretrain_file.endswith(os.path.join("pretrain", "__init__.py")) and common_file.endswith("__init__.py")
    assert tools_spec == tests_spec == "None"
