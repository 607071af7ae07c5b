#!/usr/bin/env bash
# The GPU acceptance run (issue 12): tools/bench_gpu.py on a machine with one NVIDIA GPU and a Python of
# its own with torch, torchvision, timm and transformers, but no registry (the lent GPU machine).
#
#   bash scripts/gpu_check.sh --prepare   # here, with a registry: what that machine lacks -> .gpu_wheels/
#   bash scripts/gpu_check.sh             # there (.gpu_wheels/ carried along): installs it under /tmp,
#                                         # builds mmcv's CPU ops while the GPU parts run, runs every part
#
# Results in $OUT (default ./gpu_check): gpu_check.csv, gpu_check.md, gpu_check.log, mmcv_build.log.
set -uo pipefail
cd "$(dirname "$0")/.."
WHEELS=.gpu_wheels
PY=${PYTHON:-python3}

if [[ ${1:-} == --prepare ]]; then
    set -e
    # Python 3.12 x86_64 wheels of the detection/segmentation stack (versions as requirements.txt)
    mkdir -p $WHEELS
    pin() { sed -n "s/^\(# special: \)\?$1==/$1==/p" requirements.txt | head -1; }
    PLATFORMS="--platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 --platform any"
    for pkg in pycocotools shapely termcolor omegaconf hydra-core mmengine mmsegmentation addict yapf prettytable ftfy; do
        python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
            $PLATFORMS -d $WHEELS "$(pin $pkg)"
    done
    python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 $PLATFORMS -d $WHEELS wcwidth platformdirs
    python3 -m pip wheel -q --no-deps -w $WHEELS "$(pin fvcore)" "$(pin iopath)" "$(pin yacs)" antlr4-python3-runtime==4.9.3
    # detectron2: the cp310 wheel used as pure Python (see ../shared/STACK.md); mmcv: its sdist, built there
    python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.10 -d $WHEELS "$(pin sal-detectron2)"
    .venv/bin/python -m pip download -q --no-deps --no-binary :all: --no-build-isolation -d $WHEELS "$(pin mmcv)"
    du -sh $WHEELS
    exit 0
fi

OUT=${OUT:-gpu_check}
mkdir -p "$OUT"
SITE=/tmp/gpu_check_site
exec > >(tee -a "$OUT/gpu_check.log") 2>&1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
if [[ -d $WHEELS ]]; then
    $PY -m pip install -q --no-index --no-deps --no-compile --target $SITE \
        $(ls $WHEELS/*.whl | grep -v sal_detectron2) || echo "wheel install failed: det/seg parts will fail"
    $PY -m zipfile -e $WHEELS/sal_detectron2-*.whl $SITE  # a cp310 tag pip refuses; its Python is what is used
    rm -rf $SITE/tools $SITE/tests                        # top-level packages that would shadow the project's
fi
# the project from this checkout (not pip-installed here) and the wheels above
export PYTHONPATH=$SITE:$PWD PYTHONUNBUFFERED=1

# mmcv's compiled CPU ops (all UperNet needs), built on the CPUs while the GPU parts run
build_mmcv() {
    local src=/tmp/mmcv_build
    rm -rf $src && mkdir -p $src && tar -xzf $WHEELS/mmcv-*.tar.gz -C $src && cd $src/mmcv-* || return 1
    sed -i 's/-std=c++17/-std=c++20/g' setup.py  # torch >= 2.10 headers need C++20
    CUDA_VISIBLE_DEVICES= MMCV_WITH_OPS=1 FORCE_CUDA=0 MAX_JOBS=$(nproc) \
        $PY -m pip wheel -q --no-build-isolation --no-deps . -w $src/dist &&
        $PY -m pip install -q --no-index --no-deps --no-compile --target $SITE $src/dist/mmcv-*.whl
}
start=$SECONDS
build_mmcv > "$OUT/mmcv_build.log" 2>&1 &
BUILD=$!

$PY tools/bench_gpu.py --out "$OUT" --parts pretrain,cls,det
if wait $BUILD; then
    echo "mmcv built in $((SECONDS - start)) s"
else
    echo "mmcv build failed; the tail of $OUT/mmcv_build.log:" && tail -n 20 "$OUT/mmcv_build.log"
fi
$PY tools/bench_gpu.py --out "$OUT" --parts data,seg,memory --append
