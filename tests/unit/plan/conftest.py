"""Fixtures for plan tests: the shared 'shop' fixture project written to tmp_path."""
from __future__ import annotations

from pathlib import Path

import pytest

from projects import write_project


@pytest.fixture(autouse=True)
def _pinned_orchestrator_hash(monkeypatch):
    """Other work may edit framework/orchestrator/ while these tests run; the orchestrator
    unit's code hash is pinned so 'no changes after apply' tests only what they mean to."""
    monkeypatch.setattr("framework.plan.resources.orchestrator_code_hash", lambda: "pinned-orchestrator-code")


@pytest.fixture
def shop_root(tmp_path: Path) -> Path:
    return write_project(tmp_path / "shop")
