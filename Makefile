# Two commands set everything up: `make demo` and `make test`. Both create .venv when it is missing.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export PATH := $(abspath $(BIN)):$(PATH)

.PHONY: demo test test-fast test-slurm lint install clean

install: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[test]'
	touch $@

demo: $(STAMP)
	$(BIN)/snakemake --profile profiles/local
	$(BIN)/snakemake --profile profiles/local --report results/report/report.html
	@echo "Summary: results/report/summary.md; figures: results/report/report.html"
	@cat results/report/summary.md

test: $(STAMP)
	bash .ci/install-browser.sh  # headless Chromium for the HTML report test; a no-op when present
	$(BIN)/python -m pytest -m "not slurm" --durations=15

test-fast: $(STAMP)
	$(BIN)/python -m pytest -m "not workflow and not slurm"

# A real single-node SLURM on this machine (installed when missing, needs root), the tests marked `slurm`,
# then the cluster is stopped again, whether they passed or not.
test-slurm: $(STAMP)
	bash .ci/slurm/install.sh
	bash .ci/slurm/start.sh
	$(BIN)/python -m pytest -m slurm; status=$$?; bash .ci/slurm/stop.sh; exit $$status

lint: $(STAMP)
	$(BIN)/snakemake --lint

clean:
	rm -rf results .snakemake
