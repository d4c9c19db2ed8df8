# The two quick-start commands (README): `make demo` and `make test`. Both set up .venv first.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
# Reinstall when the dependency spec changes.
STAMP  := $(VENV)/.installed-$(shell cat pyproject.toml setup.py constraints.txt 2>/dev/null | sha1sum | cut -c1-12)
# The install is editable in setuptools' strict mode: a tree of links under build/ that type checkers and import
# graphs read like any installed package (the default mode's import hook is invisible to them). A link tree does
# not see a new file, so the package's file list is part of a second stamp and a new module re-links (seconds).
PARTS  := src modeling data_builders training eval_tasks model_cards studies
# (the link tree's own folder is part of the list, so a removed build/ is re-linked too)
LINKS  := $(VENV)/.linked-$(shell (find $(PARTS) -type f -not -path '*/__pycache__/*' -not -name '*.pyc'; ls -d build/__editable__.metacond-* 2>/dev/null) | sort | sha1sum | cut -c1-12)
EDITABLE := --config-settings editable_mode=strict
PYTEST_WORKERS ?= 2

.PHONY: install demo test test-slow test-all bench clean clean-cache

$(STAMP):
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	# The pinned CPU torch first; the constraints file keeps later resolves from replacing it.
	$(BIN)/pip install -q -c constraints.txt torch==2.13.0
	$(BIN)/pip install -q -c constraints.txt -e ".[dev]" $(EDITABLE)
	rm -f $(VENV)/.installed-*
	touch $@

$(LINKS): $(STAMP)
	$(BIN)/pip install -q --no-deps --no-build-isolation -e . $(EDITABLE)
	rm -f $(VENV)/.linked-*
	touch $@

install: $(STAMP) $(LINKS)

# Main job on embedded defaults: the PCFG metadata-conditioning study at CPU scale, 2 seeds per arm (~22-30 min, 2 cores).
demo: $(STAMP) $(LINKS)
	$(BIN)/metacond pcfg-study --preset cpu --output_dir runs/pcfg-study-cpu

test: $(STAMP) $(LINKS)
	HF_HUB_OFFLINE=1 OMP_NUM_THREADS=1 $(BIN)/python -m pytest -n $(PYTEST_WORKERS) -q

# End-to-end and multi-process tests (CI runs both tiers).
test-slow: $(STAMP) $(LINKS)
	HF_HUB_OFFLINE=1 OMP_NUM_THREADS=1 $(BIN)/python -m pytest -n $(PYTEST_WORKERS) -q -m slow

test-all: $(STAMP) $(LINKS)
	HF_HUB_OFFLINE=1 OMP_NUM_THREADS=1 $(BIN)/python -m pytest -n $(PYTEST_WORKERS) -q -m "slow or not slow"

bench: $(STAMP) $(LINKS)
	$(BIN)/pip install -q -c constraints.txt -e ".[bench]" $(EDITABLE)
	$(BIN)/python benchmarks/bench_pcfg.py

# PCFG builds are cached outside the repository (~180 MB after `make demo`); clean-cache removes them.
METACOND_CACHE ?= $(HOME)/.cache/metacond

clean:
	rm -rf $(VENV) runs build *.egg-info
	@echo "PCFG dataset cache kept at $(METACOND_CACHE) (make clean-cache removes it)"

clean-cache:
	rm -rf $(METACOND_CACHE)/pcfg
