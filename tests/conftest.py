"""Shared fixtures. ``tests/projects.py`` (a small valid fixture project) is importable as
``projects`` from every test package."""
from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
from hypothesis import settings

# Property tests run on a shared 2-core CI machine: per-example deadlines would only
# measure load. print_blob lets a CI failure be replayed locally. In CI (CI=true) examples are
# derandomized: a run is reproducible and a landing never depends on luck; locally each run
# explores new examples.
settings.register_profile("pipectl", deadline=None, print_blob=True, derandomize=bool(os.environ.get("CI")))
settings.load_profile("pipectl")

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))


@pytest.fixture
def repo_root() -> Path:
    return REPO


def pytest_addoption(parser) -> None:
    group = parser.getgroup("pipectl differential test")
    group.addoption("--diff-sequences", type=int, default=3,
                    help="random edit sequences tests/integration/test_differential.py runs (CI: 3)")
    group.addoption("--diff-seed", type=int, default=0, help="seed of the first differential sequence")
    parser.getgroup("pipectl remote execution").addoption(
        "--remote-example-day", action="store_true",
        help="tests/integration/gcp/test_remote_run.py also runs the full example day (about 10 minutes on the emulators)")


def pytest_configure(config) -> None:
    config.addinivalue_line("markers", "remote_example_day: the full example day run remotely (--remote-example-day)")


def pytest_collection_modifyitems(config, items) -> None:
    """Opt-in long runs are deselected, not skipped: a CI report of 0 skipped stays meaningful."""
    if config.getoption("--remote-example-day"):
        return
    keep = [i for i in items if i.get_closest_marker("remote_example_day") is None]
    if len(keep) != len(items):
        config.hook.pytest_deselected(items=[i for i in items if i not in keep])
        items[:] = keep
