# azrlib: `make reproduce` runs the paper for a preset, `make test` runs the test suite.
# Both create .venv with the pinned CPU environment first (torch 2.13.0 CPU wheel).
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PRESET ?= tiny
export TQDM_DISABLE ?=

.PHONY: venv system-deps test test-fast reproduce demo bench clean-venv

$(VENV)/.installed: requirements.lock pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements.lock
	$(PY) -m pip install -q --no-deps -e .
	touch $@

venv: $(VENV)/.installed

# bubblewrap gives the sandbox its namespaces; installed when we can (root + apt), else the sandbox
# says what is missing.
system-deps:
	@if ! command -v bwrap >/dev/null 2>&1; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    (apt-get update -qq && apt-get install -y -qq bubblewrap libseccomp2) >/dev/null; \
	  else echo "note: bubblewrap not found; install it (apt-get install bubblewrap) for full sandbox isolation"; fi; \
	fi

test: venv system-deps
	$(PY) -m pytest -q -p no:cacheprovider tests

test-fast: venv
	$(PY) -m pytest -q -x -m "not slow" tests

# Until the trainer lands, `reproduce` runs the environment demo: check the AZR seed tasks and
# CRUXEval in the sandbox.
reproduce: venv system-deps
	@start=$$(date +%s); \
	$(VENV)/bin/azr sandbox-info && \
	$(VENV)/bin/azr check-tasks $${AZR_SEEDS:-../shared/data/azr_seeds/3b_coder_seed_io.jsonl} && \
	$(VENV)/bin/azr check-tasks --cruxeval $${CRUXEVAL:-../shared/data/benchmarks/cruxeval.jsonl}; \
	rc=$$?; echo "reproduce ($(PRESET)) took $$(( $$(date +%s) - start )) s"; exit $$rc

bench: venv system-deps
	$(PY) benchmarks/bench_sandbox.py

clean-venv:
	rm -rf $(VENV)
