#!/usr/bin/env bash
# The prepared GPU check (issue 22): installs vlabench into ./.venv-gpu from the package index
# (CUDA torch from PyPI; no other network), then prints the figures only a GPU gives
# (scripts/gpu_check.py: per-stage latency and speedup vs none beside the FLOPs bound, batched
# calls/s, pi0, LIBERO steps/s with 1/4/8 EGL simulator workers). Aims at <= 8 minutes on one
# H100. `--dry-run`: the same code paths on the CPU with tiny models, in the current .venv
# (`make test` runs it: tests/test_gpu_check.py). `--no-install`: use ./.venv-gpu as it is.
set -euo pipefail
cd "$(dirname "$0")/.."
export MUJOCO_GL=${MUJOCO_GL:-egl} PYOPENGL_PLATFORM=${PYOPENGL_PLATFORM:-egl}
if [ "${1:-}" = "--dry-run" ]; then
  exec "${VENV:-.venv}/bin/python" scripts/gpu_check.py --dry-run
fi
VENV=${VENV:-.venv-gpu}
if [ "${1:-}" != "--no-install" ]; then
  t0=$(date +%s)
  [ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
  "$VENV/bin/python" -m pip install -q --upgrade pip setuptools wheel
  "$VENV/bin/python" -m pip install -q -e ".[models,libero,report]"
  "$VENV/bin/python" -m pip uninstall -y -q torchvision 2>/dev/null || true
  "$VENV/bin/python" -m vlabench.suites.libero_setup
  echo "[gpu_check] installed in $(( $(date +%s) - t0 )) s"
fi
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
exec "$VENV/bin/python" scripts/gpu_check.py
