"""The apply lock: exclusive, fails fast naming the holder, released on exit."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from framework.errors import PlanError
from framework.plan.lock import ApplyLock


def test_second_holder_fails_fast_with_pid_and_time(tmp_path: Path):
    with ApplyLock(tmp_path) as first:
        info = first.holder()
        assert info["pid"] == os.getpid() and info["since"]
        with pytest.raises(PlanError) as err:
            ApplyLock(tmp_path).acquire()
        text = err.value.render()
        assert f"pid {os.getpid()}" in text and str(tmp_path / ".pipectl" / "apply.lock") in text
    assert ApplyLock(tmp_path).holder() is None
    with ApplyLock(tmp_path):  # free again
        pass


def test_lock_folder_is_git_ignored(tmp_path: Path):
    with ApplyLock(tmp_path):
        assert (tmp_path / ".pipectl" / ".gitignore").read_text().strip().endswith("*")
