# Front door: `make demo` and `make test` each set up a fresh machine first.
VENV ?= .venv
VLABENCH := $(VENV)/bin/vlabench
STAMP := $(VENV)/.installed
export MUJOCO_GL ?= egl
export PYOPENGL_PLATFORM ?= egl
# The SIMPLER Bridge asset fixture the tests use (README, SIMPLER): set VLABENCH_SIMPLER_ASSETS, or
# CI's checkout of the fixtures beside the repository is used when present; without either, the
# tests that need it skip and say why.
SIMPLER_FIXTURE := $(abspath ../shared/simpler_assets)
export VLABENCH_SIMPLER_ASSETS ?= $(if $(wildcard $(SIMPLER_FIXTURE)),$(SIMPLER_FIXTURE),)

.PHONY: install lerobot-env test test-fast demo clean

install: $(STAMP)

$(STAMP): pyproject.toml constraints-cpu.txt scripts/install.sh
	bash scripts/install.sh
	touch $@

# The separate environment holding lerobot's PI0, the reference model=pi0 is tested against
# (tests/test_pi0_lerobot_equivalence.py; its pins clash with ours: scripts/lerobot_env.sh).
lerobot-env:
	bash scripts/lerobot_env.sh

test: install lerobot-env
	$(VENV)/bin/python -m pytest -q -ra

test-fast: install
	$(VENV)/bin/python -m pytest -q -m "not libero and not simpler and not slow"

# The main job on the embedded default, in three steps: (1) the privileged oracle on real LIBERO
# (a real success rate: the simulator and protocol work), (2) one sweep of the tiny random-weight
# OFT, unpruned, with SpecPrune-VLA and with FastV, (3) the report (success, latency, speedup,
# FLOPs and tokens kept against pruner=none, paired test).
DEMO_OUT := results/demo
DEMO_TINY := model=openvla-oft-tiny suite=libero_spatial suite.tasks=[0] \
	run.episodes_per_task=2 run.max_steps=24 run.output_dir=$(DEMO_OUT)/tiny
demo: install
	@echo "== 1/3 model=oracle: a scripted policy reading object poses from the simulator (no images)"
	$(VLABENCH) run model=oracle suite=libero_spatial suite.tasks=[0] run.episodes_per_task=2 \
		run.output_dir=$(DEMO_OUT)/oracle
	@echo "== 2/3 tiny random-weight OpenVLA-OFT: unpruned, SpecPrune-VLA and FastV (one sweep)"
	$(VLABENCH) run -m $(DEMO_TINY) pruner=none,specprune,fastv
	@echo "== 3/3 the report of the tiny runs"
	$(VLABENCH) report $(DEMO_OUT)/tiny
	@echo "Note: random tiny weights cannot succeed (0% is expected; the oracle's success above shows"
	@echo "the simulator and protocol work), and a tiny model's CPU latency does not predict GPU speedup:"
	@echo "FLOPs and tokens kept carry over (full size: vlabench bench model=openvla-oft model.checkpoint=null)."

clean:
	rm -rf $(VENV) .venv-lerobot .pytest_cache
