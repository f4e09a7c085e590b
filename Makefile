# Self-installing entry points: `make demo`, `make test`, `make lint`, `make bench`.
VENV ?= .venv
CONFIG ?= config/config.yaml
CORES ?= all
PY := $(VENV)/bin/python
export PATH := $(abspath $(VENV))/bin:$(PATH)

# Debian packages that carry the default corpus's English text (see README, "Corpus").
CORPUS_DEBS := debian-handbook python3.11-doc fortunes

.PHONY: install corpus-deps demo test lint bench clean

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	@# The CPU wheel first, unless a torch (e.g. a CUDA build of the user's) is already there.
	$(PY) -c "import torch" 2>/dev/null || $(PY) -m pip install --quiet torch==2.13.0
	$(PY) -m pip install --quiet -e ".[dev]"
	touch $@

install: $(VENV)/.installed

corpus-deps:
	@missing=$$(for p in $(CORPUS_DEBS); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then \
		echo "installing corpus packages: $$missing"; \
		SUDO=$$([ "$$(id -u)" = 0 ] || echo sudo); \
		$$SUDO apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends $$missing; \
	fi

demo: install corpus-deps
	snakemake --cores $(CORES) --configfile $(CONFIG)

lint: install corpus-deps
	ruff check .
	ruff format --check .
	snakefmt --check workflow
	snakemake --lint --configfile $(CONFIG)

test: lint
	pytest

# Speed of the fast paths against reference-style loops, same process (see README).
# Mining reads the demo's tokenized corpus: run `make demo` first.
bench: install
	python benchmarks/bench_output_score.py $(BENCH_ARGS)
	python benchmarks/bench_mining.py $(MINING_BENCH_ARGS)
	python benchmarks/bench_generation.py $(GENERATION_BENCH_ARGS)

clean:
	rm -rf results .snakemake
