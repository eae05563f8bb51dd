"""Shared by the GCP integration tests and the conformance suites: the emulator gate.

The GCP tests need the emulators started by ``.ci/emulators.sh``. When they do not answer,
the tests FAIL with a message saying how to start them, because a silently skipped cloud
suite hides regressions. ``PIPECTL_SKIP_GCP=1`` turns that into a skip for helpers working
on a machine without emulators; CI never sets it.
"""
from __future__ import annotations

import os

import pytest

from framework.backends import gcp_emulators

SKIP_ENV = "PIPECTL_SKIP_GCP"


def require_emulators(*names: str) -> None:
    """Fail (or skip under PIPECTL_SKIP_GCP=1) unless the named emulators answer."""
    if os.environ.get(SKIP_ENV) == "1":
        pytest.skip(f"{SKIP_ENV}=1: Google Cloud emulator tests skipped")
    gcp_emulators.use_emulators()
    missing = gcp_emulators.down(names or ("bigquery", "pubsub", "firestore"))
    for timeout in (10.0, 20.0):
        # A loaded machine (CI beside other work) can keep a health answer past the first
        # 3 s: ask again, longer, before calling an emulator down. A dead one still fails.
        if not missing:
            break
        missing = [ep for ep in missing if not gcp_emulators.is_healthy(ep, timeout=timeout)]
    if missing:
        pytest.fail(gcp_emulators.explain_down(missing), pytrace=False)
