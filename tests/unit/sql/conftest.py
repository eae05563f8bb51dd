"""Fixtures for SQL tests: a copy of the golden fixture project that tests may edit."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

GOLDEN_PROJECT = Path(__file__).resolve().parents[2] / "golden" / "project"


@pytest.fixture
def project_dir(tmp_path: Path) -> Path:
    """An editable copy of tests/golden/project."""
    dest = tmp_path / "project"
    shutil.copytree(GOLDEN_PROJECT, dest)
    return dest
