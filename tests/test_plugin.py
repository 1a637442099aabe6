"""The verl plugin: a registration that fails warns in workers and stops the driver at start-up."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from verl_video.verl_adapter import plugin

REPO_ROOT = Path(__file__).resolve().parents[1]
BROKEN = "verl_video_test_broken_registration"


@pytest.fixture
def broken_registration(tmp_path, monkeypatch):
    """A registering module whose import fails the way a bad user reward file would."""
    (tmp_path / f"{BROKEN}.py").write_text("raise ValueError(\"reward 'iou' is already registered\")\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(plugin, "_REGISTRATIONS", (*plugin._REGISTRATIONS, BROKEN))
    return tmp_path


def test_workers_warn_and_go_on(broken_registration, caplog):
    with caplog.at_level("WARNING", logger="verl_video"):
        plugin.register_all()
    assert BROKEN in caplog.text and "already registered" in caplog.text


def test_strict_registration_raises_the_underlying_error(broken_registration):
    with pytest.raises(plugin.RegistrationError, match=BROKEN) as error:
        plugin.register_all(strict=True)
    assert isinstance(error.value.__cause__, ValueError)


def test_driver_stops_at_start_up(broken_registration):
    # `python -m verl_video.main` with one registration broken must exit before hydra or Ray start.
    code = (
        "import runpy, sys; from verl_video.verl_adapter import plugin; "
        f"plugin._REGISTRATIONS += ({BROKEN!r},); "
        "sys.argv = ['main', 'trainer.device=cpu']; runpy.run_module('verl_video.main', run_name='__main__')"
    )
    path = os.pathsep.join([str(broken_registration), str(REPO_ROOT), os.environ.get("PYTHONPATH", "")])
    env = {**os.environ, "PYTHONPATH": path}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, env=env)
    assert result.returncode != 0
    assert f"RegistrationError: verl-video: could not register {BROKEN}" in result.stderr
    assert "ValueError: reward 'iou' is already registered" in result.stderr


def test_a_process_without_an_accelerator_resolves_the_cpu_platform():
    # verl resolves its platform once, at the first device query; applying the patches makes one, so the
    # plugin must have registered the CPU platform before (else verl falls back to CUDA and fails later).
    import torch

    if torch.cuda.is_available():
        pytest.skip("an accelerator answers here")
    code = "import verl\nfrom verl.utils.device import get_device_name\nprint(get_device_name())\n"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO_ROOT), os.environ.get("PYTHONPATH", "")])}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, env=env)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.split()[-1] == "cpu"
