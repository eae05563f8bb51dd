"""Shared fixtures. ``tests/projects.py`` (a small valid fixture project) is importable as
``projects`` from every test package."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))


@pytest.fixture
def repo_root() -> Path:
    return REPO
