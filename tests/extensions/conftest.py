"""Fixtures of the extension tests: the user's folder (extension_project.py builds it)."""

from __future__ import annotations

from pathlib import Path

import pytest
from extension_project import write_user_project


@pytest.fixture(scope="session")
def user_project(tmp_path_factory) -> Path:
    """The user's folder: docs' task and reward files, 8 videos, 40 counting + 8 grounding records, data.yaml."""
    return write_user_project(tmp_path_factory.mktemp("user_project"))


@pytest.fixture(autouse=True)
def each_test_registers_afresh(user_registrations_undone):
    """Every test here loads the user's files anew and leaves nothing registered behind (tests/conftest.py)."""
    yield
