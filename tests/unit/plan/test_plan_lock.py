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


def test_lease_lock_in_a_state_store(tmp_path: Path):
    from framework.backends.sqlite_state import SQLiteStateStore
    from framework.plan.lock import LOCK_COLLECTION, LeaseLock

    now = [1000.0]
    store = SQLiteStateStore(tmp_path / "ledger.sqlite")
    try:
        first = LeaseLock(store, "shop", ttl_seconds=60, clock=lambda: now[0]).acquire()
        with pytest.raises(PlanError, match=rf"holds the lease {LOCK_COLLECTION}/shop.apply \(pid {os.getpid()}"):
            LeaseLock(store, "shop", ttl_seconds=60, clock=lambda: now[0]).acquire()
        now[0] += 50
        first.heartbeat()  # extends to 1110
        now[0] += 50
        with pytest.raises(PlanError):
            LeaseLock(store, "shop", ttl_seconds=60, clock=lambda: now[0]).acquire()
        now[0] += 61  # the holder died: its lease expires and another apply takes over
        second = LeaseLock(store, "shop", ttl_seconds=60, clock=lambda: now[0]).acquire()
        with pytest.raises(PlanError, match="lease .* was lost"):
            first.heartbeat()
        first.release()  # not ours any more: must not delete the new holder's lease
        assert store.get(LOCK_COLLECTION, "shop.apply")["token"] == second.token
        second.release()
        assert store.get(LOCK_COLLECTION, "shop.apply") is None
    finally:
        store.close()
