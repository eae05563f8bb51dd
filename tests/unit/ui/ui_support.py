"""Helpers of the UI route tests (imported by name; conftest.py holds the fixture)."""
from __future__ import annotations

import warnings
from pathlib import Path

from framework.cli import main

DATE = "2025-01-01"


def cli(root: Path, *args: str) -> int:
    return main(["-p", str(root), *args])


def client(root: Path, **kwargs):
    with warnings.catch_warnings():  # starlette's TestClient warns when it finds httpx rather than httpx2
        warnings.simplefilter("ignore")
        from starlette.testclient import TestClient
    from framework.ui.app import create_app

    return TestClient(create_app(str(root), None, **kwargs))
