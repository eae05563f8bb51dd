"""StateStore conformance: the same behaviour from the embedded SQLite ledger and Firestore.

Every test runs against each implementation. The Firestore variant needs the emulator
(``bash .ci/emulators.sh start``); without it the test fails with that instruction, unless
``PIPECTL_SKIP_GCP=1`` (never set in CI).
"""
from __future__ import annotations

import threading
import uuid
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest

from gcp_support import require_emulators


def _sqlite(tmp_path: Path) -> Any:
    mod = pytest.importorskip("framework.backends.sqlite_state", reason="embedded SQLite state store not in this tree yet")
    return mod.SQLiteStateStore(path=tmp_path / "ledger.sqlite")


def _firestore(tmp_path: Path) -> Any:
    require_emulators("firestore")
    from framework.backends.firestore import FirestoreStateStore

    return FirestoreStateStore("test-project", prefix=f"conf{uuid.uuid4().hex[:10]}_")


def _firestore_optimistic(tmp_path: Path) -> Any:
    require_emulators("firestore")
    from framework.backends.firestore import FirestoreStateStore

    return FirestoreStateStore("test-project", prefix=f"conf{uuid.uuid4().hex[:10]}_", concurrency="optimistic")


FACTORIES: dict[str, Callable[[Path], Any]] = {"sqlite": _sqlite, "firestore": _firestore,
                                               "firestore-optimistic": _firestore_optimistic}


@pytest.fixture(params=[pytest.param("sqlite"), pytest.param("firestore", marks=pytest.mark.gcp),
                        pytest.param("firestore-optimistic", marks=pytest.mark.gcp)])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    s = FACTORIES[request.param](tmp_path)
    s.kind = request.param
    yield s
    s.close()


VALUE = {
    "s": "héllo / wörld",
    "i": 2**40,
    "f": 1.5,
    "b": True,
    "n": None,
    "list": [1, "two", 3.0, None],
    "nested": {"a": {"b": [1, 2]}, "c": "d"},
    "lists_of_lists": [[1, 2], [], ["x"]],
    "records": [{"processor": "p1", "status": "success"}],
}


def test_get_missing_is_none(store: Any) -> None:
    assert store.get("ledger", "nope") is None


def test_set_get_round_trips_json_values(store: Any) -> None:
    store.run_transaction(lambda t: t.set("ledger", "k", VALUE))
    assert store.get("ledger", "k") == VALUE


def test_set_replaces_the_whole_document(store: Any) -> None:
    store.run_transaction(lambda t: t.set("ledger", "k", {"a": 1, "b": 2}))
    store.run_transaction(lambda t: t.set("ledger", "k", {"c": 3}))
    assert store.get("ledger", "k") == {"c": 3}


def test_set_after_a_read_replaces_the_whole_document(store: Any) -> None:
    """A set of a document the transaction read is guarded (Firestore optimistic: an update of
    every field under an update_time precondition): the result is still exactly the new value."""
    store.run_transaction(lambda t: t.set("ledger", "k", {"a": 1, "dotted.name": 2, "m": {"x": 1}, "pipectl~unchanged": 3}))

    def replace(value: dict[str, Any]) -> Any:
        return lambda t: (t.get("ledger", "k"), t.set("ledger", "k", value))

    store.run_transaction(replace({"m": {"y": {}}, "b": [[1], []]}))
    assert store.get("ledger", "k") == {"m": {"y": {}}, "b": [[1], []]}
    store.run_transaction(replace({}))
    assert store.get("ledger", "k") == {}
    store.run_transaction(replace({}))
    assert store.get("ledger", "k") == {}
    store.run_transaction(replace({"c": 1}))
    assert store.get("ledger", "k") == {"c": 1}


def test_several_writes_to_one_read_document_apply_in_order(store: Any) -> None:
    store.run_transaction(lambda t: t.set("ledger", "k", {"a": 1}))

    def fn(t: Any) -> None:
        assert t.get("ledger", "k") == {"a": 1}
        assert t.get("ledger", "new") is None
        t.set("ledger", "k", {"b": 2})
        t.update("ledger", "k", {"c": 3})
        t.set("ledger", "new", {"n": 1})
        t.delete("ledger", "new")

    store.run_transaction(fn)
    assert store.get("ledger", "k") == {"b": 2, "c": 3}
    assert store.get("ledger", "new") is None


def test_update_merges_top_level_fields_and_replaces_nested_maps(store: Any) -> None:
    store.run_transaction(lambda t: t.set("ledger", "k", {"a": 1, "m": {"x": 1, "y": 2}}))
    store.run_transaction(lambda t: t.update("ledger", "k", {"m": {"z": 3}, "dotted.name": 4}))
    assert store.get("ledger", "k") == {"a": 1, "m": {"z": 3}, "dotted.name": 4}


def test_update_of_missing_document_fails(store: Any) -> None:
    with pytest.raises(Exception):
        store.run_transaction(lambda t: t.update("ledger", "missing", {"a": 1}))
    assert store.get("ledger", "missing") is None


def test_delete_and_delete_missing(store: Any) -> None:
    store.run_transaction(lambda t: t.set("ledger", "k", {"a": 1}))
    store.run_transaction(lambda t: t.delete("ledger", "k"))
    store.run_transaction(lambda t: t.delete("ledger", "never-existed"))
    assert store.get("ledger", "k") is None


@pytest.mark.parametrize("key", ["phase2->phase3/2026-01-15", "a.b", "..", "__reserved__", "ünï cödé", "x" * 300])
def test_awkward_keys_round_trip(store: Any, key: str) -> None:
    store.run_transaction(lambda t: t.set("ledger", key, {"key": key}))
    assert store.get("ledger", key) == {"key": key}
    assert [k for k, _ in store.query("ledger")] == [key]


def test_collections_are_isolated(store: Any) -> None:
    store.run_transaction(lambda t: (t.set("a", "k", {"v": 1}), t.set("b", "k", {"v": 2})))
    assert store.get("a", "k") == {"v": 1} and store.get("b", "k") == {"v": 2}


def test_transaction_commits_on_exit_and_rolls_back_on_exception(store: Any) -> None:
    with store.transaction() as t:
        assert t.get("ledger", "k") is None
        t.set("ledger", "k", {"v": 1})
    assert store.get("ledger", "k") == {"v": 1}
    with pytest.raises(ZeroDivisionError):
        with store.transaction() as t:
            t.get("ledger", "k")
            t.set("ledger", "k", {"v": 2})
            t.set("ledger", "other", {"v": 2})
            1 / 0
    assert store.get("ledger", "k") == {"v": 1}
    assert store.get("ledger", "other") is None


def test_read_after_write_is_refused(store: Any) -> None:
    def fn(t: Any) -> None:
        t.set("ledger", "k", {"v": 1})
        t.get("ledger", "k")

    with pytest.raises(Exception, match="(?i)read"):
        store.run_transaction(fn)
    assert store.get("ledger", "k") is None


def test_run_transaction_returns_the_result_of_fn(store: Any) -> None:
    def fn(t: Any) -> str:
        before = t.get("ledger", "k")
        t.set("ledger", "k", {"n": 1})
        return "created" if before is None else "existed"

    assert store.run_transaction(fn) == "created"
    assert store.run_transaction(fn) == "existed"


def test_query_by_fields_and_limit(store: Any) -> None:
    def fill(t: Any) -> None:
        for i in range(5):
            t.set("runs", f"r{i}", {"status": "ok" if i % 2 == 0 else "failed", "partition": "2026-01-15", "i": i})
        t.set("runs", "r9", {"status": "ok", "partition": "2026-01-16", "i": 9})

    store.run_transaction(fill)
    got = sorted(store.query("runs", {"status": "ok", "partition": "2026-01-15"}))
    assert [k for k, _ in got] == ["r0", "r2", "r4"]
    assert got[1][1] == {"status": "ok", "partition": "2026-01-15", "i": 2}
    assert len(store.query("runs", {"status": "ok"}, limit=2)) == 2
    assert len(store.query("runs")) == 6
    assert store.query("runs", {"status": "missing"}) == []


def test_concurrent_increments_lose_no_update(store: Any) -> None:
    threads, per_thread = 3, 2
    store.run_transaction(lambda t: t.set("ledger", "counter", {"n": 0}))

    def incr(t: Any) -> None:
        doc = t.get("ledger", "counter")
        t.update("ledger", "counter", {"n": doc["n"] + 1})

    errors: list[BaseException] = []

    def worker() -> None:
        try:
            for _ in range(per_thread):
                store.run_transaction(incr, max_attempts=30)
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)

    pool = [threading.Thread(target=worker) for _ in range(threads)]
    for th in pool:
        th.start()
    for th in pool:
        th.join(timeout=240)
    assert not errors, errors
    assert store.get("ledger", "counter") == {"n": threads * per_thread}


def test_flag_race_has_exactly_one_winner(store: Any) -> None:
    winners: list[int] = []
    errors: list[BaseException] = []

    def claim(i: int) -> None:
        def fn(t: Any) -> bool:
            if t.get("ledger", "flag") is not None:
                return False
            t.set("ledger", "flag", {"winner": i})
            return True

        try:
            if store.run_transaction(fn, max_attempts=30):
                winners.append(i)
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    pool = [threading.Thread(target=claim, args=(i,)) for i in range(4)]
    for th in pool:
        th.start()
    for th in pool:
        th.join(timeout=240)
    assert not errors, errors
    assert len(winners) == 1
    assert store.get("ledger", "flag") == {"winner": winners[0]}
