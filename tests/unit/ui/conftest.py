"""A `pipectl init` skeleton project that has run one date: what the route tests read."""
from __future__ import annotations

from pathlib import Path

import pytest

from framework.cli import main
from tests.unit.ui.ui_support import DATE, cli


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("ui") / "shop"
    assert main(["init", str(root)]) == 0
    assert cli(root, "sample") == 0
    assert cli(root, "run", "--date", DATE, "-q") == 0
    return root
