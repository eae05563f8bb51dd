"""Fixtures for the example-pipeline tests: the repository root on sys.path (the example's
transforms and generator live in the top-level ``pipelines`` package, not in ``framework``)."""
from __future__ import annotations

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))
