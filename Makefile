# Two entry points: `make demo` (install + CPU GRPO demo) and `make test` (install + test suite).
# Everything installs into .venv; override with `make VENV=/path/to/venv ...`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.verl-video-installed

.PHONY: install demo test test-fast clean-demo

$(STAMP): setup.py
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[test]"
	@touch $(STAMP)

install: $(STAMP)

demo: install
	PATH="$(abspath $(BIN)):$$PATH" bash examples/tiny_tvg_cpu.sh

test: install
	$(BIN)/python -m pytest -q -rs

# Everything but the end-to-end GRPO run (a few minutes less).
test-fast: install
	$(BIN)/python -m pytest -q -rs -m "not e2e"

clean-demo:
	rm -rf runs/tiny_tvg_cpu
