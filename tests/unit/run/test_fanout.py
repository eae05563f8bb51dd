"""Fan-out: one task per entity, N workers, retries through bus redelivery, partial status."""
from __future__ import annotations

import threading
from collections import Counter

import pytest

from framework.backends.protocols import SubscriptionConfig, TopicConfig
from framework.run.fanout import TaskTracker, run_fanout


@pytest.fixture
def bus(tmp_path):
    from framework.backends.localbus import LocalBus

    b = LocalBus(tmp_path / "bus.sqlite")
    b.create_topic(TopicConfig("tasks"))
    b.create_subscription(SubscriptionConfig("tasks-workers", "tasks", ack_deadline_seconds=30, max_delivery_attempts=10))
    yield b
    b.close()


def test_every_entity_runs_once_across_workers(bus, memory_store) -> None:
    seen: Counter[str] = Counter()
    threads: set[str] = set()
    lock = threading.Lock()

    def execute(entity: str, attempt: int) -> int:
        with lock:
            seen[entity] += 1
            threads.add(threading.current_thread().name)
        return 2

    entities = [f"p{i:03d}" for i in range(40)]
    res = run_fanout(bus, memory_store, run_id="r1", processor="preds", partition="2026-01-15", entities=entities,
                     task_topic="tasks", subscription="tasks-workers", execute=execute, workers=4, timeout=60)
    assert res.status == "success" and res.failed == {}
    assert sorted(res.succeeded) == entities and res.rows == 80 and res.total == 40
    assert all(n == 1 for n in seen.values()) and len(seen) == 40
    assert bus.pending_count("tasks-workers") == 0


def test_failed_task_is_retried_by_redelivery_then_succeeds(bus, memory_store) -> None:
    attempts: list[int] = []

    def execute(entity: str, attempt: int) -> int:
        if entity == "flaky":
            attempts.append(attempt)
            if attempt < 3:
                raise RuntimeError(f"transient failure {attempt}")
        return 1

    res = run_fanout(bus, memory_store, run_id="r2", processor="preds", partition="d", entities=["a", "flaky", "b"],
                     task_topic="tasks", subscription="tasks-workers", execute=execute, workers=2, max_attempts=3, timeout=60)
    assert res.status == "success"
    assert attempts == [1, 2, 3] and res.attempts == 5  # a, b once; flaky three times
    assert TaskTracker(memory_store, "r2").tasks() == []  # purged once the result is returned


def test_partial_when_a_task_fails_every_attempt_and_failed_entities_are_named(bus, memory_store) -> None:
    calls: Counter[str] = Counter()

    def execute(entity: str, attempt: int) -> int:
        calls[entity] += 1
        if entity in ("bad1", "bad2"):
            raise ValueError(f"no features for {entity}")
        return 1

    res = run_fanout(bus, memory_store, run_id="r3", processor="preds", partition="d",
                     entities=["ok1", "bad1", "ok2", "bad2"], task_topic="tasks", subscription="tasks-workers",
                     execute=execute, workers=3, max_attempts=2, timeout=60)
    assert res.status == "partial"
    assert sorted(res.failed) == ["bad1", "bad2"]
    assert "no features for bad1" in res.failed["bad1"]
    assert sorted(res.succeeded) == ["ok1", "ok2"]
    assert calls["bad1"] == 2 and calls["ok1"] == 1
    assert bus.pending_count("tasks-workers") == 0


def test_all_failed_is_failed_and_timeout_names_unfinished(bus, memory_store) -> None:
    def boom(entity: str, attempt: int) -> int:
        raise RuntimeError("down")

    res = run_fanout(bus, memory_store, run_id="r4", processor="p", partition="d", entities=["x"], task_topic="tasks",
                     subscription="tasks-workers", execute=boom, workers=1, max_attempts=1, timeout=30)
    assert res.status == "failed" and "down" in res.failed["x"]

    tracker = TaskTracker(memory_store, "r5")
    tracker.create(["y"], "p", "d")
    res = tracker.result(timed_out=True)
    assert res.status == "failed" and res.failed["y"].startswith("timed out in state 'pending'")


def test_late_duplicate_of_an_ended_runs_task_does_not_kill_a_worker(bus, memory_store) -> None:
    """At-least-once delivery: a duplicate of a task whose run already ended (task documents
    purged) reaches the next run's worker. It must be dropped and acked, not raise (a raising
    worker died, and with one worker the whole run then waited for its timeout)."""
    import json

    first = run_fanout(bus, memory_store, run_id="old", processor="p", partition="d", entities=["a"], task_topic="tasks",
                       subscription="tasks-workers", execute=lambda e, a: 1, workers=1, timeout=30)
    assert first.status == "success" and TaskTracker(memory_store, "old").tasks() == []
    bus.publish("tasks", json.dumps({"run_id": "old", "processor": "p", "partition": "d", "entity": "a"}).encode(), {})
    res = run_fanout(bus, memory_store, run_id="new", processor="p", partition="d", entities=["b"], task_topic="tasks",
                     subscription="tasks-workers", execute=lambda e, a: 1, workers=1, timeout=30)
    assert (res.status, res.worker_errors, res.timed_out) == ("success", [], False)
    assert bus.pending_count("tasks-workers") == 0


def test_a_malformed_task_message_does_not_stop_the_workers(bus, memory_store) -> None:
    """Garbage on the task topic raised in the worker (json error): the worker died, and with
    one worker the run's tasks were never done. It is nacked (dead-lettered at the
    subscription's limit) and the workers go on."""
    bus.publish("tasks", b"not json", {})
    res = run_fanout(bus, memory_store, run_id="r9", processor="p", partition="d", entities=["a", "b"], task_topic="tasks",
                     subscription="tasks-workers", execute=lambda e, a: 1, workers=1, timeout=30)
    assert (res.status, res.worker_errors, sorted(res.succeeded)) == ("success", [], ["a", "b"])


def test_a_task_the_local_bus_dead_letters_fails_at_once_not_at_the_timeout(tmp_path, memory_store) -> None:
    """Every delivery of one task hangs its worker past the ack deadline: the bus redelivers
    it, then dead-letters it after the subscription's 2 attempts. The coordinator learns it
    from the bus's dead letters and ends the run `partial` with that reason, long before its
    60 s timeout; the late results of the hung workers change nothing."""
    from framework.backends.localbus import LocalBus

    b = LocalBus(tmp_path / "dl.sqlite")
    b.create_topic(TopicConfig("tasks"))
    b.create_topic(TopicConfig("tasks-dlq"))
    b.create_subscription(SubscriptionConfig("tasks-workers", "tasks", ack_deadline_seconds=2, max_delivery_attempts=2,
                                             dead_letter_topic="tasks-dlq"))
    release = threading.Event()
    hung: list[int] = []

    def execute(entity: str, attempt: int) -> int:
        if entity == "stuck":
            hung.append(attempt)
            release.wait(60)  # as good as dead: never answers within the ack deadline
        return 1

    try:
        res = run_fanout(b, memory_store, run_id="r-dl", processor="preds", partition="d", entities=["a", "stuck", "b", "c"],
                         task_topic="tasks", subscription="tasks-workers", execute=execute, workers=3, max_attempts=5,
                         timeout=60)
    finally:
        release.set()
    assert res.status == "partial" and not res.timed_out
    assert sorted(res.succeeded) == ["a", "b", "c"] and list(res.failed) == ["stuck"]
    assert res.failed["stuck"].startswith("dead-lettered: 2 delivery attempts exhausted on tasks-workers without a recorded "
                                          "outcome: no attempt was recorded")
    assert hung == [1, 2]
    assert [d.source_subscription for d in b.dead_letters("tasks-dlq")] == ["tasks-workers"]  # still listed for ops
    b.close()
