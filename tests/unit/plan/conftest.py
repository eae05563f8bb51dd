"""Fixtures for plan tests: the shared 'shop' fixture project written to tmp_path."""
from __future__ import annotations

from pathlib import Path

import pytest

from projects import write_project


@pytest.fixture
def shop_root(tmp_path: Path) -> Path:
    return write_project(tmp_path / "shop")
