#!/usr/bin/env bash
# The GPU check of noisescale from a clean tree: install FAISS for the GPU, build the CUDA
# extension, run benchmarks/gpu_check.py (README: benchmarks/README.md, "GPU check").
#
#   benchmarks/gpu_check.sh [--online] [--no-build] [--arch 90] [-- gpu_check.py options]
#   benchmarks/gpu_check.sh prepare [--arch 90]
#
# Default (offline: a GPU machine without a package registry, but with python3, a CUDA build
# of torch, nvcc, cmake, ninja, pybind11, scikit-build-core, numpy and scipy):
#   1. wheels carried in .whl/ (*.whl) are installed with pip --no-index --no-deps into
#      $NS_GPU_SITE (default /tmp/ns-gpu-site), and packs (*.tar.xz, made by `prepare`) are
#      unpacked there; PYTHONPATH points at it;
#   2. noisescale is built with -DNOISESCALE_CUDA=ON (pip --no-index --no-build-isolation
#      --no-deps --target $NS_GPU_SITE, a fresh build directory, so the tree's own build
#      outputs are never used);
#   3. python3 benchmarks/gpu_check.py runs; with $OUT set, the table goes to
#      $OUT/gpu_check.md and the logs to $OUT/gpu_check.log and $OUT/build.log.
# --online (a GPU machine with the registry): pip installs torch (PyPI's Linux build is the
#   CUDA one) and faiss-gpu in place of faiss-cpu into the current environment, then
#   `pip install . -C cmake.define.NOISESCALE_CUDA=ON` (use a virtual environment).
# --no-build: skip step 2 (a second run on the same machine).
# prepare (on a machine with the registry, no GPU needed): fills .whl/ with
#   faiss-gpu-<v>-sm<arch>.tar.xz, a pack of the registry's faiss-gpu wheel (CUDA 12) that fits
#   the 64 MiB a device run can carry: only the sm_<arch> device code is kept (the other
#   architectures' code is zeroed, so it compresses away), libcudart.so.12 comes from
#   nvidia-cuda-runtime-cu12, and cuBLAS / cuRAND (more than 500 MB) are replaced by stubs.
#   FAISS's exact max-norm search (IndexFlat, METRIC_Linf: what ksg(knn="faiss") uses) calls
#   neither; a stubbed GEMM prints what was called and fails, so a path that needs the real
#   cuBLAS stops with an error, never with a wrong answer.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
SITE=${NS_GPU_SITE:-/tmp/ns-gpu-site}
ARCH=90
FAISS_VERSION=1.15.1
CUDART_VERSION=12.9.79
MODE=offline
BUILD=1
CMD=run
ARGS=()
while [ $# -gt 0 ]; do
  case "$1" in
    prepare) CMD=prepare ;;
    --online) MODE=online ;;
    --no-build) BUILD=0 ;;
    --arch) ARCH=$2; shift ;;
    --) shift; ARGS+=("$@"); break ;;
    *) ARGS+=("$1") ;;
  esac
  shift
done
T0=$(date +%s)
say() { echo "== [$(( $(date +%s) - T0 ))s] $*"; }

# ------------------------------------------------------------------------------- prepare
if [ "$CMD" = prepare ]; then
  command -v cc >/dev/null || { echo "prepare needs a C compiler (cc)" >&2; exit 2; }
  WORK=$(mktemp -d)
  trap 'rm -rf "$WORK"' EXIT
  DL=(--no-deps --only-binary=:all: --python-version 3.12 --implementation cp
      --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64
      --platform manylinux2014_x86_64 -d "$WORK/dl")
  say "download faiss-gpu==$FAISS_VERSION, nvidia-cuda-runtime-cu12==$CUDART_VERSION"
  "$PY" -m pip download --quiet "${DL[@]}" "faiss-gpu==$FAISS_VERSION" \
    "nvidia-cuda-runtime-cu12==$CUDART_VERSION"
  P="$WORK/pack"
  mkdir -p "$P/nvidia/cuda_runtime/lib" "$P/nvidia/cublas/lib" "$P/nvidia/curand/lib"
  "$PY" -m zipfile -e "$WORK"/dl/faiss_gpu-*.whl "$P"
  "$PY" -m zipfile -e "$WORK"/dl/nvidia_cuda_runtime_cu12-*.whl "$WORK/cudart"
  cp "$WORK/cudart/nvidia/cuda_runtime/lib/libcudart.so.12" "$P/nvidia/cuda_runtime/lib/"
  chmod +x "$P"/faiss/*.so "$P"/faiss_gpu.libs/*.so* "$P"/nvidia/*/lib/*.so*
  say "keep only sm_$ARCH device code in libfaiss.so"
  "$PY" - "$P/faiss/libfaiss.so" "$ARCH" <<'EOF'
# Zero the payload of every fatbin entry that is not an sm_<arch> ELF (headers kept, so the
# CUDA runtime still parses each fatbin and loads the sm_<arch> code on such a device).
import mmap, struct, sys
path, arch = sys.argv[1], int(sys.argv[2])
kept = zeroed = 0
with open(path, "r+b") as f, mmap.mmap(f.fileno(), 0) as m:
    magic, pos = struct.pack("<I", 0xBA55ED50), 0
    while (i := m.find(magic, pos)) >= 0:
        version, header, size = struct.unpack_from("<HHQ", m, i + 4)
        if version != 1 or header != 16:
            pos = i + 4
            continue
        p, end = i + header, i + header + size
        while p < end:
            kind, _, entry_header, payload = struct.unpack_from("<HHIQ", m, p)
            entry_arch = struct.unpack_from("<I", m, p + 28)[0]
            if entry_header == 0:
                break
            if kind == 2 and entry_arch == arch:  # 2: ELF (SASS), 1: PTX
                kept += payload
            else:
                m[p + entry_header:p + entry_header + payload] = bytes(payload)
                zeroed += payload
            p += entry_header + payload
        pos = end
if not kept:
    sys.exit(f"no sm_{arch} code in {path}: this faiss-gpu build cannot run on sm_{arch}")
print(f"kept {kept / 2**20:.1f} MiB of sm_{arch} code, zeroed {zeroed / 2**20:.1f} MiB")
EOF
  say "cuBLAS / cuRAND stubs"
  # Calls that only set up a handle succeed; anything else says what it was and fails
  # (CUBLAS_STATUS_NOT_SUPPORTED), which FAISS turns into an error.
  SYMS=$(nm -D --undefined-only "$P/faiss/libfaiss.so" | sed -n 's/.* \(cublas[A-Za-z0-9_]*\)@libcublas\.so\.12$/\1/p' | sort -u)
  {
    echo '#include <stdio.h>'
    echo 'static int handle;'
    echo 'static int fail(const char* f) { fprintf(stderr, "gpu_check cuBLAS stub: %s called; this FAISS path needs the real cuBLAS\n", f); return 15; }'
    for s in $SYMS; do
      case "$s" in
        cublasCreate_v2) echo 'int cublasCreate_v2(void** h) { *h = &handle; return 0; }' ;;
        cublasGetMathMode) echo 'int cublasGetMathMode(void* h, int* m) { (void)h; *m = 0; return 0; }' ;;
        cublasDestroy_v2|cublasSetStream_v2|cublasSetMathMode|cublasSetWorkspace_v2|cublasSetPointerMode_v2)
          echo "int $s(void) { return 0; }" ;;
        *) echo "int $s(void) { return fail(\"$s\"); }" ;;
      esac
    done
  } >"$WORK/cublas.c"
  { echo 'libcublas.so.12 { global:'; for s in $SYMS; do echo "  $s;"; done; echo 'local: *; };'; } >"$WORK/cublas.map"
  cc -shared -fPIC -O1 -o "$P/nvidia/cublas/lib/libcublas.so.12" "$WORK/cublas.c" \
    -Wl,-soname,libcublas.so.12 -Wl,--version-script,"$WORK/cublas.map"
  echo 'int gpu_check_cublaslt_stub;' >"$WORK/lt.c"
  echo 'libcublasLt.so.12 { global: gpu_check_cublaslt_stub; local: *; };' >"$WORK/lt.map"
  cc -shared -fPIC -o "$P/nvidia/cublas/lib/libcublasLt.so.12" "$WORK/lt.c" \
    -Wl,-soname,libcublasLt.so.12 -Wl,--version-script,"$WORK/lt.map"
  echo 'int gpu_check_curand_stub;' >"$WORK/rand.c"
  cc -shared -fPIC -o "$P/nvidia/curand/lib/libcurand.so.10" "$WORK/rand.c" -Wl,-soname,libcurand.so.10
  cat >"$P/NS_GPU_PACK.txt" <<EOF
faiss-gpu $FAISS_VERSION (registry wheel) with only sm_$ARCH device code; libcudart.so.12 from
nvidia-cuda-runtime-cu12 $CUDART_VERSION; libcublas.so.12, libcublasLt.so.12 and libcurand.so.10
are stubs (benchmarks/gpu_check.sh prepare). Stubbed: $(echo $SYMS)
EOF
  mkdir -p .whl
  OUTPACK=".whl/faiss-gpu-$FAISS_VERSION-sm$ARCH.tar.xz"
  say "compress $OUTPACK"
  tar -C "$P" -cf - . | xz -T0 -6 >"$OUTPACK"
  ls -l .whl
  say "done; carry .whl (the device tool's carry: [\".whl\"])"
  exit 0
fi

# ------------------------------------------------------------------------------- run
if ! command -v nvcc >/dev/null && [ -z "${CUDACXX:-}" ]; then
  for n in /usr/local/cuda/bin/nvcc /usr/local/cuda-*/bin/nvcc; do
    [ -x "$n" ] && { export CUDACXX=$n; break; }
  done
fi
LOGDIR=${OUT:-}
BUILD_LOG=${LOGDIR:+$LOGDIR/build.log}
BUILD_LOG=${BUILD_LOG:-$(mktemp)}
say "python: $("$PY" -c 'import sys; print(sys.executable, sys.version.split()[0])'), $(nproc) cores"
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader || true

if [ "$MODE" = online ]; then
  say "registry: a CUDA build of torch, faiss-gpu in place of faiss-cpu"
  "$PY" -m pip install --quiet "torch>=2.3"
  "$PY" -m pip uninstall --yes --quiet faiss-cpu || true
  "$PY" -m pip install --quiet faiss-gpu
  if [ "$BUILD" = 1 ]; then
    say "build: pip install . -C cmake.define.NOISESCALE_CUDA=ON"
    CMAKE_BUILD_PARALLEL_LEVEL=$(nproc) "$PY" -m pip install --quiet . \
      -C cmake.define.NOISESCALE_CUDA=ON -C cmake.define.CMAKE_CUDA_ARCHITECTURES="$ARCH" \
      -C build-dir=/tmp/ns-gpu-build >"$BUILD_LOG" 2>&1 || { tail -40 "$BUILD_LOG"; exit 2; }
  fi
else
  mkdir -p "$SITE"
  shopt -s nullglob
  for w in .whl/*.whl; do
    say "install $w"
    "$PY" -m pip install --quiet --no-index --no-deps --upgrade --target "$SITE" "$w"
  done
  for t in .whl/*.tar.xz; do
    say "unpack $t"
    tar -C "$SITE" -xJf "$t"
  done
  shopt -u nullglob
  export PYTHONPATH="$SITE${PYTHONPATH:+:$PYTHONPATH}"
  if [ "$BUILD" = 1 ]; then
    say "build: pip install --no-index --no-build-isolation --no-deps -C cmake.define.NOISESCALE_CUDA=ON"
    rm -rf /tmp/ns-gpu-build "$SITE"/noisescale "$SITE"/noisescale-*.dist-info
    CMAKE_BUILD_PARALLEL_LEVEL=$(nproc) "$PY" -m pip install --no-index --no-build-isolation \
      --no-deps --target "$SITE" . -C cmake.define.NOISESCALE_CUDA=ON \
      -C cmake.define.CMAKE_CUDA_ARCHITECTURES="$ARCH" -C build-dir=/tmp/ns-gpu-build \
      >"$BUILD_LOG" 2>&1 || { tail -40 "$BUILD_LOG"; exit 2; }
  fi
fi
say "built; run benchmarks/gpu_check.py ${ARGS[*]:-}"
# Run from outside the tree, so `import noisescale` finds the build, not the source folder.
ROOT=$(pwd)
cd /tmp
set +e
if [ -n "$LOGDIR" ]; then
  "$PY" "$ROOT/benchmarks/gpu_check.py" --out "$LOGDIR/gpu_check.md" "${ARGS[@]}" 2>&1 | tee "$LOGDIR/gpu_check.log"
  rc=${PIPESTATUS[0]}
else
  "$PY" "$ROOT/benchmarks/gpu_check.py" "${ARGS[@]}"
  rc=$?
fi
say "gpu_check.py exit status $rc"
exit $rc
