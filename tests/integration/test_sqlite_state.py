"""SQLiteStateStore: the StateStore protocol on a real SQLite file, several processes at once."""
from __future__ import annotations

import multiprocessing as mp
import sqlite3
from pathlib import Path

import pytest

from framework.backends.protocols import StateStore
from framework.backends.sqlite_state import SQLiteStateStore
from framework.errors import BackendError


@pytest.fixture
def store(tmp_path: Path):
    s = SQLiteStateStore(tmp_path / "state.sqlite")
    yield s
    s.close()


def test_implements_the_protocol(store):
    assert isinstance(store, StateStore)


def test_set_get_update_delete(store):
    with store.transaction() as txn:
        txn.set("c", "k", {"a": 1, "b": [1, 2]})
    assert store.get("c", "k") == {"a": 1, "b": [1, 2]}
    store.run_transaction(lambda txn: txn.update("c", "k", {"b": None, "c": "x"}))
    assert store.get("c", "k") == {"a": 1, "b": None, "c": "x"}
    store.run_transaction(lambda txn: txn.delete("c", "k"))
    assert store.get("c", "k") is None


def test_exception_rolls_back_every_write(store):
    with pytest.raises(RuntimeError):
        with store.transaction() as txn:
            txn.set("c", "k1", {"a": 1})
            txn.set("c", "k2", {"a": 2})
            raise RuntimeError("boom")
    assert store.get("c", "k1") is None and store.get("c", "k2") is None


def test_the_original_error_survives_when_sqlite_already_rolled_back(store):
    """SQLite ends the transaction itself on some errors (disk full, I/O); the rollback of
    the context manager must then not replace the real error with 'no transaction is active'."""
    with pytest.raises(RuntimeError, match="the real cause"):
        with store.transaction() as txn:
            txn.set("c", "k1", {"a": 1})
            txn._conn.execute("ROLLBACK")  # what SQLite does on SQLITE_FULL / SQLITE_IOERR
            raise RuntimeError("the real cause")
    assert store.get("c", "k1") is None
    store.run_transaction(lambda txn: txn.set("c", "k2", {"a": 2}))  # the connection is usable again
    assert store.get("c", "k2") == {"a": 2}


def test_reads_must_come_before_writes(store):
    with pytest.raises(BackendError, match="reads? .*before"):
        with store.transaction() as txn:
            txn.set("c", "k", {"a": 1})
            txn.get("c", "k")
    assert store.get("c", "k") is None  # rolled back


def test_update_of_a_missing_document_is_an_error(store):
    with pytest.raises(BackendError, match="missing document"):
        store.run_transaction(lambda txn: txn.update("c", "nope", {"a": 1}))


def test_values_must_be_plain_json(store):
    with pytest.raises(BackendError, match="not plain JSON"):
        store.run_transaction(lambda txn: txn.set("c", "k", {"when": object()}))
    with pytest.raises(BackendError):
        store.run_transaction(lambda txn: txn.set("c", "k", {"x": float("nan")}))


def test_query_filters_on_top_level_fields(store):
    def fill(txn):
        txn.set("led", "a", {"active": True, "partition": "d1", "n": 1})
        txn.set("led", "b", {"active": False, "partition": "d1", "n": 2})
        txn.set("led", "c", {"active": True, "partition": "d2", "n": 3, "tags": ["x"]})
        txn.set("other", "a", {"active": True})
    store.run_transaction(fill)
    assert [k for k, _ in store.query("led", {"active": True})] == ["a", "c"]
    assert [k for k, _ in store.query("led", {"partition": "d1"})] == ["a", "b"]
    assert [k for k, _ in store.query("led", {"tags": ["x"]})] == ["c"]
    assert [k for k, _ in store.query("led", {"missing": None})] == ["a", "b", "c"]
    assert len(store.query("led", limit=2)) == 2


def test_memory_store(tmp_path):
    s = SQLiteStateStore(":memory:")
    s.run_transaction(lambda txn: txn.set("c", "k", {"a": 1}))
    assert s.get("c", "k") == {"a": 1}


def test_run_transaction_retries_when_the_database_is_locked(tmp_path):
    path = tmp_path / "locked.sqlite"
    store = SQLiteStateStore(path, busy_timeout=0.05)
    blocker = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    blocker.execute("BEGIN IMMEDIATE")
    calls = []

    def fn(txn):
        calls.append(1)
        txn.set("c", "k", {"ok": True})

    import threading
    threading.Timer(0.3, lambda: blocker.execute("COMMIT")).start()
    store.run_transaction(fn, max_attempts=50)
    assert store.get("c", "k") == {"ok": True} and calls
    blocker.close()


def test_lock_held_too_long_is_a_backend_error_naming_the_file(tmp_path):
    path = tmp_path / "locked.sqlite"
    store = SQLiteStateStore(path, busy_timeout=0.01)
    blocker = sqlite3.connect(path, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")
    try:
        with pytest.raises(BackendError, match="locked.sqlite"):
            store.run_transaction(lambda txn: txn.set("c", "k", {}), max_attempts=2)
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()


def _increment(path: str, n: int) -> None:
    store = SQLiteStateStore(path)

    def inc(txn):
        doc = txn.get("counter", "x") or {"n": 0}
        txn.set("counter", "x", {"n": doc["n"] + 1})

    for _ in range(n):
        store.run_transaction(inc)
    store.close()


def test_concurrent_read_modify_write_from_several_processes_loses_nothing(tmp_path):
    path = str(tmp_path / "shared.sqlite")
    SQLiteStateStore(path).close()
    ctx = mp.get_context("fork")
    procs = [ctx.Process(target=_increment, args=(path, 50)) for _ in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
    assert SQLiteStateStore(path).get("counter", "x") == {"n": 200}
