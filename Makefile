# nriqa — two commands on a fresh machine: `make demo` and `make test`.
# Override the torch build, e.g.  make test TORCH_SPEC="torch==2.5.1 torchvision==0.20.1"
PYTHON      ?= python3
VENV        ?= .venv
TORCH_SPEC  ?= torch==2.14.1 torchvision==0.29.1
PROFILE     ?= demo
PY          := $(VENV)/bin/python
STAMP       := $(VENV)/.nriqa-installed
# no MPLBACKEND here: notebook kernels use the inline backend, so figures land in the executed
# notebooks; the pytest unit tests set Agg themselves (tests/conftest.py)
export PYDEVD_DISABLE_FILE_VALIDATION := 1
# the same CPU kernels on every x86-64 machine (AVX-512 ones round differently): also for kernels that
# import torch before nriqa (nriqa.compute.pin_cpu_kernels sets these on import where unset)
ifeq ($(shell uname -m),x86_64)
export ATEN_CPU_CAPABILITY ?= avx2
export ONEDNN_MAX_CPU_ISA ?= AVX2
export MKL_CBWR ?= AVX2
endif

.PHONY: venv demo test lint test-unit test-notebooks browser-test lab notebooks bench clean

venv: $(STAMP)

# .[dev]: the library plus its [notebooks] (JupyterLab, papermill, ipykernel) and [cluster] (submitit)
# extras and the test tools
$(STAMP): pyproject.toml Makefile
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet $(TORCH_SPEC)
	$(PY) -m pip install --quiet -e ".[dev]" $(TORCH_SPEC)
	$(PY) -m ipykernel install --sys-prefix --name nriqa --display-name "Python (nriqa)" >/dev/null
	touch $(STAMP)

## Main job: every notebook in order, headlessly, on the embedded demo profile.
demo: $(STAMP)
	$(PY) -m nriqa run --profile $(PROFILE)

## Whole test suite: ruff (lint + import order); pytest unit tests; nbval over the notebooks in the
## smoke profile (a CPU budget of one core, one training process); the same notebooks again by
## `nriqa run` into a second run root (a budget of two cores, two training processes, a busy process
## beside it), checked for one image output per saved figure (tests/test_executed_notebooks.py) and
## for the same summary.json bytes and trained tensors as the first pass (tests/test_reproducible.py).
SMOKE_ENV := NRIQA_PROFILE=smoke NRIQA_RUNS=$(CURDIR)/runs NRIQA_WEIGHTS=$(CURDIR)/runs/smoke/weights
AGAIN_ENV := NRIQA_PROFILE=smoke NRIQA_RUNS=$(CURDIR)/runs/again NRIQA_WEIGHTS=$(CURDIR)/runs/again/smoke/weights
test: $(STAMP) lint
	$(PY) -m pytest tests -q -p no:cacheprovider --timeout=900 --durations=10 -m "not browser"
	rm -rf runs/smoke runs/again
	$(SMOKE_ENV) NRIQA_THREADS=1 NRIQA_STATIC=1 NRIQA_BATCH=1 \
	  $(PY) -m pytest --nbval-lax --nbval-current-env --nbval-sanitize-with tests/nbval_sanitize.cfg \
	  notebooks -q -p no:cacheprovider
	$(AGAIN_ENV) NRIQA_THREADS=2 $(PY) tests/beside_busy.py \
	  $(PY) -m nriqa run --profile tests/profiles/smoke_two_workers.yaml --run-root $(CURDIR)/runs/again
	NRIQA_EXECUTED=$(CURDIR)/runs/again/smoke/notebooks \
	  NRIQA_REPRO_A=$(CURDIR)/runs/smoke NRIQA_REPRO_B=$(CURDIR)/runs/again/smoke \
	  $(PY) -m pytest tests/test_executed_notebooks.py tests/test_reproducible.py -q -p no:cacheprovider

## Lint and import order (ruff, settings in pyproject.toml); the first step of `make test`.
LINTED := nriqa tests benchmarks notebooks/src
lint: $(STAMP)
	$(VENV)/bin/ruff check $(LINTED)

test-unit: $(STAMP)
	$(PY) -m pytest tests -q

## Optional: the notebooks in a real browser (JupyterLab + Chromium via playwright, tests/test_browser.py).
## Installs Debian's chromium with apt-get (root) when no Chromium is on PATH; `make test` never does.
## Runs the smoke profile into runs/browser/run (skipped with BROWSER_EXECUTED=<folder of executed
## notebooks>) and saves screenshots of the executed notebooks 03 and 06 in JupyterLab, their
## figures and verdict tables, and of the frame comparer widget to runs/browser/*.png (listed at the end).
BROWSER_DIR      := $(CURDIR)/runs/browser
BROWSER_EXECUTED ?=
browser-test: $(STAMP)
	command -v chromium >/dev/null || command -v chromium-browser >/dev/null || \
	  (apt-get update -qq && apt-get install -y -qq chromium)
ifeq ($(BROWSER_EXECUTED),)
	rm -rf $(BROWSER_DIR)/run
	NRIQA_THREADS=1 $(PY) -m nriqa run --profile smoke --run-root $(BROWSER_DIR)/run
endif
	NRIQA_BROWSER_EXECUTED=$(or $(BROWSER_EXECUTED),$(BROWSER_DIR)/run/smoke/notebooks) \
	  NRIQA_BROWSER_SHOTS=$(BROWSER_DIR) \
	  $(PY) -m pytest tests/test_browser.py -m browser -q -p no:cacheprovider -rs
	@echo "screenshots in JupyterLab (notebooks 03, 06; the comparer):"; \
	  ls -1 $(BROWSER_DIR)/*.png 2>/dev/null || echo "  none"

## JupyterLab rooted at the repository: notebooks/ to explore, runs/demo/notebooks/ to read what
## `make demo` executed; opens on notebooks/.
## Its contents manager (nriqa.lab) opens a notebook whose .ipynb was edited outside JupyterLab and
## rewrites its notebooks/src source from it (plain jupytext refuses: "File Load Error").
lab: $(STAMP)
	$(VENV)/bin/jupyter lab --ServerApp.root_dir="$(CURDIR)" --LabApp.default_url=/lab/tree/notebooks \
	  --ServerApp.contents_manager_class=nriqa.lab.PairedNotebooksContentsManager

## Rewrite notebooks/*.ipynb from their jupytext sources in notebooks/src/.
notebooks: $(STAMP)
	$(PY) notebooks/build_notebooks.py

bench: $(STAMP)
	$(PY) benchmarks/bench_models.py
	$(PY) benchmarks/bench_trainer.py

clean:
	rm -rf runs .pytest_cache
