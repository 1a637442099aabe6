"""benchmarks/gpu_check.py on the CPU: every check passes on tiny models, and the script needs neither verl, Ray,
vLLM nor omegaconf (a lent GPU machine has torch and transformers only)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from verl_video.video import settings

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "gpu_check.py"
FAMILIES = ("qwen2_5_vl", "qwen3_vl")
CHECKS = ("vision_reuse", "mrope", "flash_attn", "actor_step")
FORBIDDEN = {"verl", "ray", "vllm"}
# Runs the script as `python benchmarks/gpu_check.py ...` would, with omegaconf made unimportable.
WITHOUT_OMEGACONF = (
    "import runpy, sys\n"
    "sys.modules['omegaconf'] = None\n"
    "sys.argv = [{script!r}, '--device', 'cpu', '--report-modules']\n"
    "runpy.run_path({script!r}, run_name='__main__')\n"
)


@pytest.mark.slow
def test_gpu_check_passes_on_tiny_models_without_verl_or_omegaconf():
    run = subprocess.run(
        [sys.executable, "-c", WITHOUT_OMEGACONF.format(script=str(SCRIPT))],
        capture_output=True, text=True, timeout=600, cwd=SCRIPT.parents[1],
    )
    output = run.stdout + run.stderr
    assert run.returncode == 0, output

    verdicts = dict(re.findall(r"^CHECK (\S+): (.*)$", run.stdout, flags=re.M))
    assert sorted(verdicts) == sorted(f"{f}.{c}" for f in FAMILIES for c in CHECKS), output
    for name, verdict in verdicts.items():
        if name.endswith(".flash_attn"):
            # No GPU here: skipped, saying why.
            assert verdict.startswith("SKIP ") and "CUDA" in verdict, verdict
        else:
            assert verdict.startswith("PASS "), f"{name}: {verdict}"

    lines = run.stdout.strip().splitlines()
    assert lines[-1] == f"{len(FAMILIES) * (len(CHECKS) - 1)} passed, 0 failed", output
    modules = next(line for line in lines if line.startswith("MODULES: ")).split()[1:]
    assert "torch" in modules and "verl_video" in modules  # the report lists what was loaded
    assert not (FORBIDDEN | {"omegaconf"}) & set(modules), modules


def test_video_defaults_read_without_omegaconf_equal_omegaconfs():
    plain = settings._read_plain_video_defaults(settings.DEFAULTS_FILE)
    assert plain == settings.read_video_defaults(settings.DEFAULTS_FILE)
    assert isinstance(plain["seed"], int)  # `${trainer.seed}` resolved, not left as text
