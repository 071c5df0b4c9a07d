# Front door: `make demo` and `make test` each set up a fresh machine first.
VENV ?= .venv
VLABENCH := $(VENV)/bin/vlabench
STAMP := $(VENV)/.installed
export MUJOCO_GL ?= egl
export PYOPENGL_PLATFORM ?= egl

.PHONY: install test test-fast demo clean

install: $(STAMP)

$(STAMP): pyproject.toml constraints-cpu.txt scripts/install.sh
	bash scripts/install.sh
	touch $@

test: install
	$(VENV)/bin/python -m pytest -q -ra

test-fast: install
	$(VENV)/bin/python -m pytest -q -m "not libero and not simpler and not slow"

# The main job on the embedded default: tiny random-weight OFT, unpruned and with SpecPrune-VLA,
# a few short LIBERO episodes each, then the report (speedup and paired test against none).
DEMO_RUN := model=openvla-oft-tiny suite=libero_spatial suite.tasks=[0] \
	run.episodes_per_task=2 run.max_steps=24 run.output_dir=results/demo
demo: install
	$(VLABENCH) run $(DEMO_RUN) pruner=none
	$(VLABENCH) run $(DEMO_RUN) pruner=specprune
	$(VLABENCH) report results/demo

clean:
	rm -rf $(VENV) .pytest_cache
