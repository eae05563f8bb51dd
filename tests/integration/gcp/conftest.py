"""GCP integration tests: every test here needs the emulators of ``.ci/emulators.sh``.

Missing emulators FAIL the tests with the command to start them (never a silent skip);
``PIPECTL_SKIP_GCP=1`` skips them on a machine without emulators. CI never sets it.
"""
from __future__ import annotations

import uuid

import pytest

from framework.backends.gcp_emulators import EMULATOR_PROJECT
from gcp_support import require_emulators

PROJECT = EMULATOR_PROJECT


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "integration/gcp" in str(item.fspath).replace("\\", "/"):
            item.add_marker(pytest.mark.gcp)


@pytest.fixture(autouse=True)
def _emulators() -> None:
    require_emulators()


@pytest.fixture
def uid() -> str:
    """A short unique prefix: the emulators are shared between tests and runs."""
    return f"t{uuid.uuid4().hex[:8]}"
