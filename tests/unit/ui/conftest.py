"""A `pipectl init` skeleton project that has run one date: what the route tests read."""
from __future__ import annotations

import warnings
from pathlib import Path

import pytest

from framework.cli import main

DATE = "2025-01-01"


def cli(root: Path, *args: str) -> int:
    return main(["-p", str(root), *args])


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("ui") / "shop"
    assert main(["init", str(root)]) == 0
    assert cli(root, "sample") == 0
    assert cli(root, "run", "--date", DATE, "-q") == 0
    return root


def client(root: Path, **kwargs):
    with warnings.catch_warnings():  # starlette's TestClient warns when it finds httpx rather than httpx2
        warnings.simplefilter("ignore")
        from starlette.testclient import TestClient
    from framework.ui.app import create_app

    return TestClient(create_app(str(root), None, **kwargs))
