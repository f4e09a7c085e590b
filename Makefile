# Self-installing entry points: `make demo`, `make test`, `make lint`, `make bench`.
VENV ?= .venv
CONFIG ?= config/config.yaml
CORES ?= all
PY := $(VENV)/bin/python
export PATH := $(abspath $(VENV))/bin:$(PATH)

# Debian packages that carry the default corpus's English text (see docs/method.md, "Corpus").
CORPUS_DEBS := debian-handbook python3.11-doc fortunes
# The browser the report test opens the HTML report in (its own driver: nothing downloaded).
BROWSER_DEBS := chromium chromium-driver

.PHONY: install corpus-deps browser-deps paper-data demo report robustness test test-fast lint bench clean

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	@# The CPU wheel first, unless a torch (e.g. a CUDA build of the user's) is already there.
	$(PY) -c "import torch" 2>/dev/null || $(PY) -m pip install --quiet torch==2.13.0
	$(PY) -m pip install --quiet -e ".[dev]"
	touch $@

install: $(VENV)/.installed

# Install the Debian packages in $(1) that are missing (as root, or through sudo).
define apt_install
	@missing=$$(for p in $(1); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then \
		echo "installing Debian packages: $$missing"; \
		SUDO=$$([ "$$(id -u)" = 0 ] || echo sudo); \
		$$SUDO apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends $$missing; \
	fi
endef

corpus-deps:
	$(call apt_install,$(CORPUS_DEBS))

browser-deps:
	$(call apt_install,$(BROWSER_DEBS))

# The paper's public repository (needs network): its data/ folder (concepts.released) and,
# under resources/paper/, the input files the paper configs read.
PAPER_REPO := https://github.com/technion-cs-nlp/saes-are-good-for-steering
PAPER_DIR := resources/paper/saes-are-good-for-steering
PAPER_INPUTS := features/gemma_2b_features.json features/gemma_9b_concept500_features.json \
	axbench_instructions/gemma2_9b_it_131_instructions_cache.json

paper-data:
	test -d $(PAPER_DIR)/.git || git clone --depth 1 $(PAPER_REPO) $(PAPER_DIR)
	cp $(addprefix $(PAPER_DIR)/data/,$(PAPER_INPUTS)) resources/paper/

# The run's folder, results/<run>, from the config's `run`.
RUN_DIR = results/$$($(PY) -c "import yaml,sys; print(yaml.safe_load(open(sys.argv[1]))['run'])" $(CONFIG))

# The HTML report of a finished run, results/<run>/report.html, beside the feature explorer
# it links to (results/<run>/explorer/); its path is the last line printed.
define build_report
	snakemake --configfile $(CONFIG) --report $(RUN_DIR)/report.html
	@realpath $(RUN_DIR)/report.html
endef

demo: install corpus-deps
	snakemake --cores $(CORES) --configfile $(CONFIG)
	$(build_report)

# The demo (or CONFIG) under 3 seeds of feature sampling and SAE training: each finding's
# verdict per seed (seed 0 is the config's own run, reused when finished).
robustness: install corpus-deps
	saesteer robustness $(CONFIG) --cores $(CORES)

# Rebuilds the report of a finished run (after `make demo` or a `snakemake` run).
report: install
	$(build_report)

lint: install corpus-deps
	ruff check .
	ruff format --check .
	snakefmt --check workflow
	snakemake --lint --configfile $(CONFIG)

test: lint browser-deps
	pytest -n auto --durations=25

# The fast loop: everything but the Snakemake, browser and SLURM tiers.
test-fast: install
	pytest -m "not workflow"

# Speed of the fast paths against reference-style loops, same process (see docs/speed.md).
# Mining and perplexity read the demo's tokenized corpus: run `make demo` first.
PERPLEXITY_BENCH_ARGS ?= --chunks results/gemma3-demo/corpus/chunks.parquet
BENCH_OUT ?= benchmarks/out
bench: install
	mkdir -p $(BENCH_OUT)
	python benchmarks/bench_output_score.py --out $(BENCH_OUT)/output_score.json $(BENCH_ARGS)
	python benchmarks/bench_mining.py --out $(BENCH_OUT)/mining.json $(MINING_BENCH_ARGS)
	python benchmarks/bench_generation.py --out $(BENCH_OUT)/generation.json $(GENERATION_BENCH_ARGS)
	python benchmarks/bench_concepts.py --out $(BENCH_OUT)/concepts.json $(CONCEPT_BENCH_ARGS)
	python benchmarks/bench_perplexity.py --out $(BENCH_OUT)/perplexity.json $(PERPLEXITY_BENCH_ARGS)
	@# what `saesteer estimate --rates $(BENCH_OUT)/rates.json` projects with on this machine
	python benchmarks/rates.py --bench $(BENCH_OUT) --run-config $(CONFIG) --out $(BENCH_OUT)/rates.json

clean:
	rm -rf results .snakemake
