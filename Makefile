# The two commands of README: `make demo` and `make test` do all set-up on a fresh machine.
PYTHON ?= $(shell command -v python3.10 || command -v python3)
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test bench imports install clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip setuptools wheel

$(STAMP): $(PY) pyproject.toml setup.py
	$(PY) -m pip install --progress-bar off -e ".[lava,dev]"
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/spikes demo

test: $(STAMP)
	$(VENV)/bin/pytest -q --nbmake tests $(wildcard notebooks/*.ipynb)

bench: $(STAMP)
	$(PY) benchmarks/run_all.py

# The counts (upward imports, import cycles, in-function imports), then the layer contract (pyproject.toml
# [tool.importlinter]) on the staged package: its result is the target's.
imports: $(STAMP)
	$(PY) .ci/imports.py counts
	$(PY) .ci/imports.py lint

clean:
	rm -rf $(VENV) build *.egg-info
