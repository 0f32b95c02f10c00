# The front door: `make run` and `make test` each do their own set-up on a fresh machine.
PY ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint bench setup sysdeps clean

$(STAMP): pyproject.toml
	@command -v $(PY) >/dev/null 2>&1 || { echo "需要 Python 3.11 / Python 3.11 is required"; exit 1; }
	@test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	@touch $(STAMP)

setup: $(STAMP)

# Debian packages the tests use (dcmtk for dcmdump/storescu, chromium for browser tests, fonts for CJK rendering,
# wrk for the benchmark script's test).
sysdeps:
	@bash scripts/sysdeps.sh

run: $(STAMP)
	$(BIN)/sandbox serve --demo

test: $(STAMP) sysdeps
	$(BIN)/python -m pytest -n 2 --dist loadfile

lint: $(STAMP)
	$(BIN)/ruff check sandbox tests
	$(BIN)/mypy sandbox

# wrk and Prism for the province-vs-Prism benchmark (apt-get / npm into .bench/ when missing).
bench: $(STAMP)
	@bash scripts/bench-deps.sh
	$(BIN)/python -m sandbox.bench

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
