# The two set-up commands of a fresh clone (see README.md):
#   make demo   installs what is needed into .venv and animates a bundled portrait with a bundled driver
#   make test   installs what is needed into .venv, runs ruff (lint, format check) and the test suite
VENV ?= .venv
PYTHON ?= python3
BIN := $(VENV)/bin
STAMP := $(VENV)/.fsth-installed

.PHONY: demo test install

demo: $(STAMP)
	@mkdir -p out
	$(BIN)/fsth animate tests/assets/einstein.jpg tests/assets/talk.mp4 -o out/demo.mp4 --force
	$(BIN)/fsth animate tests/assets/einstein.jpg tests/assets/talk.mp4 -o out/demo_side_by_side.mp4 --force \
		--side-by-side --paste-back --no-head-motion

test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/python -m pytest -q

install: $(STAMP)

# torch first, pinned: the CPU wheel of this machine's wheel folder (plain `torch` would pull GBs of CUDA packages)
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q torch==2.13.0
	$(BIN)/python -m pip install -q -e ".[dev]"
	@touch $(STAMP)
