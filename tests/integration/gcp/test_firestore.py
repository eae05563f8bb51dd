"""Firestore specifics beyond the StateStore conformance suite: optimistic isolation,
document limits, heavy contention."""
from __future__ import annotations

import threading
from typing import Any, Iterator

import pytest

from framework.backends.firestore import FirestoreStateStore
from framework.backends.gcp_emulators import EMULATOR_PROJECT
from framework.errors import BackendError


@pytest.fixture
def optimistic(uid: str) -> Iterator[FirestoreStateStore]:
    s = FirestoreStateStore(EMULATOR_PROJECT, prefix=f"{uid}_", concurrency="optimistic")
    yield s
    s.close()


@pytest.fixture(params=["pessimistic", "optimistic"])
def store(request: pytest.FixtureRequest, uid: str) -> Iterator[FirestoreStateStore]:
    s = FirestoreStateStore(EMULATOR_PROJECT, prefix=f"{uid}_", concurrency=request.param)
    yield s
    s.close()


def test_a_changed_read_only_document_fails_the_commit(optimistic: FirestoreStateStore) -> None:
    """Write skew is impossible: T reads B (and does not write it); B changes; T must not commit."""
    optimistic.run_transaction(lambda t: (t.set("c", "A", {"v": 0}), t.set("c", "B", {"flag": False})))
    with pytest.raises(BackendError, match="concurrent writer"):
        with optimistic.transaction() as t:
            b = t.get("c", "B")
            t.get("c", "A")
            optimistic.run_transaction(lambda t2: t2.update("c", "B", {"flag": True}))  # a concurrent writer
            t.set("c", "A", {"v": 1, "saw_flag": b["flag"]})
    assert optimistic.get("c", "A") == {"v": 0}


def test_a_document_created_after_it_was_read_as_missing_fails_the_commit(optimistic: FirestoreStateStore) -> None:
    with pytest.raises(BackendError, match="concurrent writer"):
        with optimistic.transaction() as t:
            assert t.get("c", "claim") is None
            optimistic.run_transaction(lambda t2: t2.set("c", "claim", {"by": "other"}))
            t.set("c", "claim", {"by": "me"})
    assert optimistic.get("c", "claim") == {"by": "other"}


def test_update_of_a_document_read_as_missing_fails(optimistic: FirestoreStateStore) -> None:
    with pytest.raises(BackendError, match="missing"):
        optimistic.run_transaction(lambda t: (t.get("c", "nope"), t.update("c", "nope", {"a": 1})))


def test_oversized_document_is_refused_with_the_fix(store: FirestoreStateStore) -> None:
    with pytest.raises(BackendError, match="1 MiB.*") as err:
        store.run_transaction(lambda t: t.set("c", "big", {"ids": ["player-%06d" % i for i in range(120_000)]}))
    assert "chunk" in (err.value.hint or "")


def test_many_concurrent_increments_on_one_document(optimistic: FirestoreStateStore) -> None:
    """12 writers x 3 increments on one hot document: no lost update (optimistic mode)."""
    optimistic.run_transaction(lambda t: t.set("c", "n", {"n": 0}))
    errors: list[BaseException] = []

    def incr(t: Any) -> None:
        t.update("c", "n", {"n": t.get("c", "n")["n"] + 1})

    def worker() -> None:
        try:
            for _ in range(3):
                optimistic.run_transaction(incr, max_attempts=60)
        except BaseException as exc:  # noqa: BLE001 - asserted below
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(12)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(timeout=240)
    assert not errors, errors
    assert optimistic.get("c", "n") == {"n": 36}
    assert optimistic.stats["retries"] > 0  # there was real contention


def test_an_unreachable_emulator_fails_within_the_timeout_naming_the_document(monkeypatch: pytest.MonkeyPatch) -> None:
    """The SDK's default retries outlasted the per-call timeout (a read of a dead endpoint was
    still retrying after 25 s with timeout=2): reads, queries and optimistic transactions now
    end with the store's timeout (a generous thread bound, not a timing assertion)."""
    monkeypatch.setenv("FIRESTORE_EMULATOR_HOST", "127.0.0.1:9")
    dead = FirestoreStateStore(EMULATOR_PROJECT, timeout=2, concurrency="optimistic")
    calls = ((lambda: dead.get("orch_ledger", "raw|2026-01-15"), "orch_ledger/raw|2026-01-15"),
             (lambda: dead.query("orch_triggers"), "orch_triggers"),
             (lambda: dead.run_transaction(lambda t: t.get("orch_ledger", "k1")), "orch_ledger/k1"))
    for fn, name in calls:
        out: list[BaseException] = []

        def call(fn: Any = fn) -> None:
            try:
                fn()
            except BaseException as exc:  # noqa: BLE001 - inspected below
                out.append(exc)

        worker = threading.Thread(target=call, daemon=True)
        worker.start()
        worker.join(120)
        assert not worker.is_alive(), f"{name}: still retrying after 120 s with a 2 s timeout"
        assert isinstance(out[0], BackendError) and name in str(out[0]), out[0]
