#!/usr/bin/env bash
# Builds .venv-lerobot, the separate environment that runs lerobot's PI0 as the reference for
# `model=pi0` (tests/test_pi0_lerobot_equivalence.py). Separate because lerobot pins torch<2.11
# and needs transformers 4.53.2, while vlabench runs on torch 2.13 / transformers 5.
# Called by `make test`; safe to re-run (a stamp file skips a finished build).
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${LEROBOT_VENV:-.venv-lerobot}
PYTHON=${PYTHON:-python3.11}
command -v "$PYTHON" >/dev/null || PYTHON=python3
REQ=tests/reference/lerobot-requirements.txt
STAMP="$VENV/.installed-$(sha1sum "$REQ" | cut -c1-12)"
[ -f "$STAMP" ] && exit 0
[ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
"$VENV/bin/python" -m pip install -q --upgrade pip
"$VENV/bin/python" -m pip install -q -r "$REQ" -c <(grep -E '^[A-Za-z].*==' "$REQ")
"$VENV/bin/python" -m pip install -q --no-deps lerobot==0.4.4
rm -f "$VENV"/.installed-*
touch "$STAMP"
echo "[lerobot-env] done: $VENV (lerobot 0.4.4, transformers 4.53.2, torch 2.13.0)"
