# dcmanon: `make demo` sets up and runs the main job on synthetic data; `make test` tests.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint typecheck peers clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev,distributed,net,ocr,pixels]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/python tools/demo.py

lint: $(STAMP)
	$(BIN)/ruff check src tests tools $(wildcard bench)
	$(BIN)/lint-imports

typecheck: $(STAMP)
	$(BIN)/mypy

# The external tools the tests compare against (DCMTK, dicom3tools, GDCM, Chromium): nothing
# to do when all are on PATH, else installed with apt-get (which needs root or sudo).
peers:
	bash scripts/install-system-deps.sh

# `make test` installs the peers first, so it requires them: a missing one fails its tests
# (DCMANON_REQUIRE_PEERS=1). A plain `pytest` skips those tests instead, saying why.
test: peers lint typecheck
	DCMANON_REQUIRE_PEERS=1 $(BIN)/python -m pytest

clean:
	rm -rf $(VENV) demo .pytest_cache .mypy_cache .ruff_cache
