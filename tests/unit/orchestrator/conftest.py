"""Fixtures of the orchestrator tests. Helpers live in ``orch_support`` (a unique module
name: several test packages have a conftest.py, so ``from conftest import`` is ambiguous)."""
from __future__ import annotations

from orch_support import alerts, bus, clock, make_orch, store  # noqa: F401  (fixtures)
