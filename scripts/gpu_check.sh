#!/usr/bin/env bash
# The GPU acceptance run on a machine with one NVIDIA GPU and a Python of its own with torch, torchvision,
# timm and transformers, but no registry (the lent GPU machine).
#
#   bash scripts/gpu_check.sh --prepare        # here, with a registry: what that machine lacks -> .gpu_wheels/
#   bash scripts/gpu_check.sh --parts preset   # there (.gpu_wheels/ carried along): installs it under /tmp,
#   bash scripts/gpu_check.sh --parts data,mfu #   builds mmcv's CPU ops in the background if a part needs them
#
# Parts (--parts, comma-separated; default: all, which is more than one 10-minute command):
#   steps   every pipeline's training step, timed and sized (tools/bench_gpu.py; docs/benchmarks.md has its tables)
#   preset  the whole pipeline on this GPU: tools/reproduce.py --preset gpu --jobs 8 (at most 6 minutes is the
#           goal), its tables, verdicts and times written into docs/benchmarks.md (copied to $OUT/benchmarks.md)
#   data    the pre-training loader, both data backends, 1 and 15 workers (tools/bench_gpu.py --parts data)
#   mfu     the MFU trials of the ViT-B pre-training step (tools/bench_mfu.py, within a 330 s budget)
# Results in $OUT (default ./gpu_check): gpu_check.csv/.md, mfu/, preset/, gpu_check.log, mmcv_build.log.
# PRESET=gpu-smoke (and JOBS=2) runs the preset part's runs for a few iterations, on a CPU too (tests/test_reproduce_gpu.py).
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
    python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 $PLATFORMS -d $WHEELS wcwidth platformdirs \
        "$(pin dall-e)"  # the dVAE architecture (the gpu preset's dvae_token target)
    python3 -m pip wheel -q --no-deps -w $WHEELS "$(pin fvcore)" "$(pin iopath)" "$(pin yacs)" antlr4-python3-runtime==4.9.3
    # detectron2: the cp310 wheel used as pure Python (see ../shared/STACK.md); mmcv: its sdist, built there
    python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.10 -d $WHEELS "$(pin sal-detectron2)"
    .venv/bin/python -m pip download -q --no-deps --no-binary :all: --no-build-isolation -d $WHEELS "$(pin mmcv)"
    du -sh $WHEELS
    exit 0
fi

PARTS=all
if [[ ${1:-} == --parts ]]; then PARTS=${2:?--parts needs a list such as preset or data,mfu}; fi
[[ $PARTS == all ]] && PARTS=steps,preset,data,mfu
for part in ${PARTS//,/ }; do
    [[ $part =~ ^(steps|preset|data|mfu)$ ]] || { echo "error: --parts: unknown part $part (steps, preset, data, mfu)"; exit 2; }
done
wants() { [[ ,$PARTS, == *,$1,* ]]; }
OUT=${OUT:-gpu_check}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
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
status=0

# mmcv's compiled CPU ops (all UperNet needs), built on the CPUs while the GPU parts run
build_mmcv() {
    local src=/tmp/mmcv_build
    rm -rf $src && mkdir -p $src && tar -xzf $WHEELS/mmcv-*.tar.gz -C $src && cd $src/mmcv-* || return 1
    sed -i 's/-std=c++17/-std=c++20/g' setup.py  # torch >= 2.10 headers need C++20
    CUDA_VISIBLE_DEVICES= MMCV_WITH_OPS=1 FORCE_CUDA=0 MAX_JOBS=$(nproc) \
        $PY -m pip wheel -q --no-build-isolation --no-deps . -w $src/dist &&
        $PY -m pip install -q --no-index --no-deps --no-compile --target $SITE $src/dist/mmcv-*.whl
}
BUILD=
if [[ -d $WHEELS ]] && ! $PY -c "import mmcv.ops" 2>/dev/null && { wants steps || wants preset; }; then
    start=$SECONDS
    build_mmcv > "$OUT/mmcv_build.log" 2>&1 &
    BUILD=$!
fi
wait_mmcv() {
    [[ -z $BUILD ]] && return 0
    if wait $BUILD; then
        echo "mmcv built in $((SECONDS - start)) s"
    else
        echo "mmcv build failed; the tail of $OUT/mmcv_build.log:" && tail -n 20 "$OUT/mmcv_build.log"
    fi
    BUILD=
}

if wants steps; then
    $PY tools/bench_gpu.py --out "$OUT" --parts pretrain,cls,det || status=1
    wait_mmcv
    $PY tools/bench_gpu.py --out "$OUT" --parts seg,memory --append || status=1
fi
if wants preset; then
    preset=${PRESET:-gpu}
    # the runs without UperNet first, while mmcv builds; then the rest (finished runs are skipped)
    $PY tools/reproduce.py --preset "$preset" --out "$OUT/preset" --jobs "${JOBS:-8}" --kinds pretrain,cls,det || status=1
    wait_mmcv
    $PY tools/reproduce.py --preset "$preset" --out "$OUT/preset" --jobs "${JOBS:-8}" --record "${BENCHMARKS:-docs/benchmarks.md}" || status=1
    cp "${BENCHMARKS:-docs/benchmarks.md}" "$OUT/benchmarks.md"
fi
if wants data; then
    $PY tools/bench_gpu.py --out "$OUT" --parts data $([[ -f $OUT/gpu_check.csv ]] && echo --append) || status=1
fi
if wants mfu; then
    $PY tools/bench_mfu.py --out "$OUT/mfu" --budget-s 330 || status=1
fi
exit $status
