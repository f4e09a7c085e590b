# Self-installing entry points: `make demo`, `make test`, `make lint`.
VENV ?= .venv
CONFIG ?= config/config.yaml
CORES ?= all
PY := $(VENV)/bin/python
export PATH := $(abspath $(VENV))/bin:$(PATH)

.PHONY: install demo test lint clean

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	@# The CPU wheel first, unless a torch (e.g. a CUDA build of the user's) is already there.
	$(PY) -c "import torch" 2>/dev/null || $(PY) -m pip install --quiet torch==2.13.0
	$(PY) -m pip install --quiet -e ".[dev]"
	touch $@

install: $(VENV)/.installed

demo: install
	snakemake --cores $(CORES) --configfile $(CONFIG)

lint: install
	ruff check .
	ruff format --check .
	snakefmt --check workflow
	snakemake --lint --configfile $(CONFIG)

test: lint
	pytest

clean:
	rm -rf results .snakemake
