#!/usr/bin/env bash
# Creates .venv with the whole pinned stack (requirements.txt). Idempotent: a stamp keyed by the
# requirements file skips everything when nothing changed. See ../shared/STACK.md for the why.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3.11}
VENV=.venv
STAMP=$VENV/.setup-stamp
REQ_HASH=$( (cat requirements.txt scripts/setup.sh pyproject.toml) | sha256sum | cut -c1-16)
CACHE=${MAE_TOOLKIT_CACHE:-$HOME/.cache/mae-toolkit}

if [[ -f $STAMP && $(cat "$STAMP") == "$REQ_HASH" ]]; then
    exit 0
fi
say() { echo "[setup] $*"; }

special_version() { sed -n "s/^# special: $1==//p" requirements.txt; }
MMCV_VERSION=$(special_version mmcv)
D2_VERSION=$(special_version sal-detectron2)
DALLE_VERSION=$(special_version dall-e)

if [[ ! -x $VENV/bin/python ]]; then
    say "creating $VENV with $($PYTHON --version)"
    $PYTHON -m venv $VENV
fi
PY=$PWD/$VENV/bin/python
# (the filter hides pip's warnings about this machine's empty extra index folders)
pip_install() { $PY -m pip install --quiet "$@" 2> >(grep -v 'is ignored: it is neither' >&2); }
say "installing requirements.txt (torch is a ~5.5 GB CUDA build taken from this machine's disk)"
pip_install --upgrade "pip==25.3"
pip_install -r requirements.txt

TORCH_VERSION=$($PY -c 'import torch; print(torch.__version__.split("+")[0])')
PY_TAG=$($PY -c 'import sys; print(f"cp{sys.version_info[0]}{sys.version_info[1]}")')

# mmcv: compiled ops are required by mmseg (mmcv-lite is not enough). The PyPI sdist hard-codes
# -std=c++17, which torch >= 2.10 headers reject, so it is patched to C++20. ~10 min on 2 cores,
# so the built wheel is cached outside the work tree, keyed by mmcv, torch and Python versions.
MMCV_CACHE=$CACHE/mmcv-$MMCV_VERSION-torch$TORCH_VERSION-$PY_TAG
if ! ls "$MMCV_CACHE"/mmcv-*.whl >/dev/null 2>&1; then
    say "building mmcv $MMCV_VERSION with compiled ops (about 10 minutes on 2 cores; cached in $MMCV_CACHE)"
    BUILD=$(mktemp -d)
    $PY -m pip download --quiet --no-deps --no-build-isolation --no-binary :all: "mmcv==$MMCV_VERSION" -d "$BUILD"
    tar -xzf "$BUILD"/mmcv-"$MMCV_VERSION".tar.gz -C "$BUILD"
    sed -i 's/-std=c++17/-std=c++20/g' "$BUILD/mmcv-$MMCV_VERSION/setup.py"
    mkdir -p "$MMCV_CACHE.partial"
    if ! (cd "$BUILD/mmcv-$MMCV_VERSION" && MMCV_WITH_OPS=1 FORCE_CUDA=0 MAX_JOBS=${MAX_JOBS:-2} \
            $PY -m pip wheel --no-build-isolation --no-deps . -w "$MMCV_CACHE.partial" > "$BUILD/build.log" 2>&1); then
        tail -n 40 "$BUILD/build.log" >&2
        echo "[setup] mmcv build failed; full log: $BUILD/build.log" >&2
        exit 1
    fi
    rm -rf "$MMCV_CACHE" && mv "$MMCV_CACHE.partial" "$MMCV_CACHE"
    rm -rf "$BUILD"
else
    say "using cached mmcv wheel from $MMCV_CACHE"
fi
pip_install --no-deps --force-reinstall "$MMCV_CACHE"/mmcv-*.whl

# detectron2: a cp310 wheel whose Python sources are upstream's; its _C does not load here and
# detectron2 falls back to torchvision ops. `installer` does not check wheel tags.
D2_CACHE=$CACHE/sal-detectron2-$D2_VERSION
if ! ls "$D2_CACHE"/*.whl >/dev/null 2>&1; then
    say "downloading sal-detectron2 $D2_VERSION (pure-Python use)"
    $PY -m pip download --quiet --no-deps --only-binary=:all: --python-version 3.10 \
        "sal-detectron2==$D2_VERSION" -d "$D2_CACHE"
fi
if ! $PY -c 'import detectron2' 2>/dev/null; then
    $PY -m installer "$D2_CACHE"/*.whl
fi

# dall-e: only its model code is used (the DALL-E dVAE architecture for the token target); its
# declared dependencies (mypy, pytest, blobfile, ...) are not needed, attrs and requests are pinned.
pip_install --no-deps "dall-e==$DALLE_VERSION"

# detectron2's and mmsegmentation's wheels install top-level `tools` and `tests` packages (their scripts
# and test suite; nothing imports them): removed, so that these names are this checkout's folders
rm -rf "$($PY -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"/{tools,tests}

say "installing this project (pip install -e .: its packages, and its tools as console scripts mae-*)"
pip_install --no-deps --no-build-isolation -e .

say "checking imports"
(cd / && $PY - <<'PY'
import torch, torchvision, timm, mmcv, mmengine, mmseg, detectron2
from dall_e.encoder import Encoder
from mmcv.ops import point_sample  # needs the compiled mmcv._ext
import mmseg.models
from detectron2.modeling import build_model
import backbones, pretrain.engine, det.backbone, seg.backbone  # this project, installed
print(f"[setup] torch {torch.__version__}, torchvision {torchvision.__version__}, timm {timm.__version__}, "
      f"mmcv {mmcv.__version__}, mmseg {mmseg.__version__}, detectron2 {detectron2.__version__}")
PY
)  # from outside the checkout: the project's packages are found as installed
echo "$REQ_HASH" > "$STAMP"
say "done"
