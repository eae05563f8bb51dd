"""Conflict detection of the Firestore optimistic transaction, on the emulator.

A concurrent writer slips in between an attempt's reads and its commit (deterministically: the
attempt itself calls a second store, as another worker would). Each kind of write must then
fail its precondition and be retried by run_transaction, and the retry must see the other
writer's value; a read-only document that changed must fail the commit the same way; and the
commit's verification of unchanged reads must itself change nothing."""
from __future__ import annotations

import threading
from typing import Any, Callable, Iterator

import pytest

from framework.backends.firestore import FirestoreStateStore
from framework.backends.firestore_txn import HELPER_THREAD
from framework.backends.gcp_emulators import EMULATOR_PROJECT
from framework.errors import BackendError


@pytest.fixture
def stores(uid: str) -> Iterator[tuple[FirestoreStateStore, FirestoreStateStore]]:
    """The store under test and another worker's store (its own client) on the same documents."""
    mine = FirestoreStateStore(EMULATOR_PROJECT, prefix=f"{uid}_", concurrency="optimistic")
    other = FirestoreStateStore(EMULATOR_PROJECT, prefix=f"{uid}_", concurrency="optimistic")
    yield mine, other
    mine.close()
    other.close()


def racing(first_attempt_interference: Callable[[], Any], body: Callable[[Any], Any]) -> tuple[Callable[[Any], Any], list[int]]:
    """``body`` wrapped so that its first attempt runs the interference after its reads."""
    calls = [0]

    def fn(t: Any) -> Any:
        calls[0] += 1
        return body(t) if calls[0] > 1 else body(_Interfering(t, first_attempt_interference))

    return fn, calls


class _Interfering:
    """A transaction whose first write is preceded by another writer's commit."""

    def __init__(self, txn: Any, interference: Callable[[], Any]):
        self._txn, self._interference = txn, interference

    def get(self, collection: str, key: str) -> Any:
        return self._txn.get(collection, key)

    def _before_write(self) -> None:
        if self._interference is not None:
            self._interference()
            self._interference = None

    def set(self, *args: Any) -> None:
        self._before_write()
        self._txn.set(*args)

    def update(self, *args: Any) -> None:
        self._before_write()
        self._txn.update(*args)

    def delete(self, *args: Any) -> None:
        self._before_write()
        self._txn.delete(*args)


@pytest.mark.parametrize("op", ["update", "set", "delete"])
def test_a_write_between_read_and_commit_is_a_conflict_and_the_retry_sees_it(stores: Any, op: str) -> None:
    mine, other = stores
    mine.run_transaction(lambda t: t.set("c", "k", {"n": 1, "keep": "x"}))

    def body(t: Any) -> None:
        n = t.get("c", "k")["n"]
        if op == "update":
            t.update("c", "k", {"n": n + 1})
        elif op == "set":
            t.set("c", "k", {"n": n + 1})
        elif n == 10:  # delete only what the other writer left
            t.delete("c", "k")
        else:
            t.update("c", "k", {"n": -1})

    fn, calls = racing(lambda: other.run_transaction(lambda t: t.update("c", "k", {"n": 10})), body)
    mine.run_transaction(fn)
    assert calls[0] == 2 and mine.stats["retries"] == 1
    expected = {"update": {"n": 11, "keep": "x"}, "set": {"n": 11}, "delete": None}[op]
    assert mine.get("c", "k") == expected


@pytest.mark.parametrize("op", ["set", "delete"])
def test_a_document_created_after_it_was_read_as_missing_is_a_conflict(stores: Any, op: str) -> None:
    mine, other = stores

    def body(t: Any) -> str:
        before = t.get("c", "claim")
        if op == "set":
            if before is None:
                t.set("c", "claim", {"by": "me"})
        else:
            t.delete("c", "claim")
        return "claimed" if before is None else "taken"

    fn, calls = racing(lambda: other.run_transaction(lambda t: t.set("c", "claim", {"by": "other"})), body)
    assert mine.run_transaction(fn) == "taken"
    assert calls[0] == 2 and mine.stats["retries"] == 1
    assert mine.get("c", "claim") == ({"by": "other"} if op == "set" else None)


def test_a_changed_read_only_document_is_a_conflict_and_the_retry_sees_it(stores: Any) -> None:
    """Write skew is impossible: the attempt read B without writing it; B changed; retry."""
    mine, other = stores
    mine.run_transaction(lambda t: (t.set("c", "A", {"v": 0}), t.set("c", "B", {"flag": False})))

    def body(t: Any) -> None:
        flag = t.get("c", "B")["flag"]
        t.get("c", "A")
        t.set("c", "A", {"v": 1, "saw_flag": flag})

    fn, calls = racing(lambda: other.run_transaction(lambda t: t.update("c", "B", {"flag": True})), body)
    mine.run_transaction(fn)
    assert calls[0] == 2 and mine.stats["retries"] == 1
    assert mine.get("c", "A") == {"v": 1, "saw_flag": True}


def test_a_read_only_document_created_concurrently_is_a_conflict(stores: Any) -> None:
    mine, other = stores

    def body(t: Any) -> None:
        t.set("c", "A", {"saw": t.get("c", "B")})

    fn, calls = racing(lambda: other.run_transaction(lambda t: t.set("c", "B", {"x": 1})), body)
    mine.run_transaction(fn)
    assert calls[0] == 2 and mine.get("c", "A") == {"saw": {"x": 1}}


def test_verifying_unchanged_reads_changes_nothing_and_readers_do_not_conflict(stores: Any) -> None:
    """The commit verifies B (read, not written) with a write that must change neither B's
    fields (even one named like the field the verification deletes) nor its update_time: two
    transactions that only share reads both commit, first time."""
    mine, other = stores
    b_value = {"pipectl~unchanged": 1, "v": 2}
    mine.run_transaction(lambda t: t.set("c", "B", b_value))
    stamp = mine.ref("c", "B").get().update_time
    with other.transaction() as slow:  # reads B, commits after `mine` verified B
        assert slow.get("c", "B") == b_value
        mine.run_transaction(lambda t: (t.get("c", "B"), t.get("c", "gone"), t.set("c", "A", {"v": 1})))
        slow.set("c", "C", {"v": 1})
    assert mine.get("c", "B") == b_value and mine.ref("c", "B").get().update_time == stamp
    assert mine.get("c", "gone") is None
    assert mine.get("c", "C") == {"v": 1} and mine.stats["retries"] == 0 and other.stats["retries"] == 0


def test_a_conflict_in_a_with_block_is_reported_not_retried(stores: Any) -> None:
    mine, other = stores
    mine.run_transaction(lambda t: t.set("c", "k", {"n": 1}))
    with pytest.raises(BackendError, match="concurrent writer") as err:
        with mine.transaction() as t:
            t.get("c", "k")
            other.run_transaction(lambda t2: t2.delete("c", "k"))
            t.update("c", "k", {"n": 2})
    assert "run_transaction" in (err.value.hint or "")
    assert mine.get("c", "k") is None


def test_a_pessimistic_with_block_runs_in_the_callers_thread(uid: str) -> None:
    """transaction() in pessimistic mode hands the SDK's @transactional work to a helper
    thread; the block itself, and its exceptions, stay the caller's."""
    store = FirestoreStateStore(EMULATOR_PROJECT, prefix=f"{uid}_", concurrency="pessimistic")
    try:
        with store.transaction() as t:
            assert threading.get_ident() == threading.main_thread().ident
            assert t.get("c", "k") is None
            t.set("c", "k", {"n": 1})
        assert store.get("c", "k") == {"n": 1}
        boom = KeyError("the block's own error")
        with pytest.raises(KeyError) as err:
            with store.transaction() as t:
                t.get("c", "k")
                t.update("c", "k", {"n": 2})
                raise boom
        assert err.value is boom
        assert store.get("c", "k") == {"n": 1}
        assert not [th for th in threading.enumerate() if th.name == HELPER_THREAD]  # they end with their transaction
    finally:
        store.close()
