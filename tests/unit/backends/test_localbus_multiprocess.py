"""Several worker processes consume one LocalBus subscription at once.

Each handler records (message, worker, attempt, start, end, outcome) into a separate SQLite
file; the test then checks that every message was processed, never by two workers at the
same time, exactly once without failures and at least once with injected failures.
"""
from __future__ import annotations

import multiprocessing
import os
import sqlite3
import time
from pathlib import Path

import pytest

from framework.backends.localbus import LocalBus
from framework.backends.protocols import ReceivedMessage, SubscriptionConfig, TopicConfig
from framework.backends.bus_worker import run_worker

WORKERS = 4
MESSAGES = 200


def _records(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(str(path), timeout=60, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("CREATE TABLE IF NOT EXISTS handled (message TEXT, worker INTEGER, attempt INTEGER, start REAL, finish REAL, ok INTEGER)")
    return conn


def _worker(bus_path: str, records_path: str, fail_every: int, result_queue) -> None:
    bus = LocalBus(bus_path)
    records = _records(Path(records_path))

    def handle(msg: ReceivedMessage) -> None:
        start = time.time()
        time.sleep(0.001)  # widen the window in which a double delivery would overlap
        n = int(msg.data)
        ok = not (fail_every and n % fail_every == 0 and msg.delivery_attempt == 1)
        records.execute("INSERT INTO handled VALUES (?, ?, ?, ?, ?, ?)", (msg.message_id, os.getpid(), msg.delivery_attempt, start, time.time(), int(ok)))
        if not ok:
            raise RuntimeError(f"injected failure for message {n}")

    try:
        stats = run_worker(bus, "jobs", handle, max_messages=5, timeout=120, poll_interval=0.02)
        result_queue.put((os.getpid(), stats.acked, stats.nacked, stats.timed_out))
    finally:
        bus.close()
        records.close()


def _run(tmp_path: Path, fail_every: int) -> tuple[list[tuple], list[tuple], LocalBus]:
    bus_path, records_path = tmp_path / "bus.sqlite", tmp_path / "records.sqlite"
    bus = LocalBus(bus_path)
    bus.create_topic(TopicConfig("jobs-topic"))
    bus.create_topic(TopicConfig("jobs-dlq"))
    bus.create_subscription(SubscriptionConfig("jobs", "jobs-topic", ack_deadline_seconds=60, max_delivery_attempts=5, dead_letter_topic="jobs-dlq"))
    for i in range(MESSAGES):
        bus.publish("jobs-topic", str(i).encode())
    _records(records_path).close()
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    procs = [ctx.Process(target=_worker, args=(str(bus_path), str(records_path), fail_every, queue)) for _ in range(WORKERS)]
    for p in procs:
        p.start()
    results = [queue.get(timeout=180) for _ in procs]
    for p in procs:
        p.join(timeout=30)
        assert p.exitcode == 0
    rows = _records(records_path).execute("SELECT message, worker, attempt, start, finish, ok FROM handled").fetchall()
    return results, rows, bus


def _assert_never_concurrent(rows: list[tuple]) -> None:
    by_message: dict[str, list[tuple]] = {}
    for row in rows:
        by_message.setdefault(row[0], []).append(row)
    for message, handled in by_message.items():
        handled.sort(key=lambda r: r[3])
        for earlier, later in zip(handled, handled[1:]):
            assert later[3] >= earlier[4], f"message {message} handled concurrently: {earlier} / {later}"
            assert later[2] > earlier[2], f"message {message} attempts not increasing: {earlier} / {later}"


@pytest.mark.slow
def test_four_processes_process_every_message_exactly_once(tmp_path):
    results, rows, bus = _run(tmp_path, fail_every=0)
    assert not any(timed_out for *_, timed_out in results)
    assert sum(acked for _, acked, _, _ in results) == MESSAGES
    assert len(rows) == MESSAGES
    assert len({r[0] for r in rows}) == MESSAGES
    assert all(r[5] == 1 and r[2] == 1 for r in rows)
    _assert_never_concurrent(rows)
    assert bus.pending_count("jobs") == 0
    bus.close()


@pytest.mark.slow
def test_four_processes_with_injected_failures_process_at_least_once(tmp_path):
    results, rows, bus = _run(tmp_path, fail_every=7)
    failing = {str(i) for i in range(MESSAGES) if i % 7 == 0}
    assert sum(nacked for _, _, nacked, _ in results) == len(failing)
    ok = [r for r in rows if r[5] == 1]
    assert len(ok) == MESSAGES and len({r[0] for r in ok}) == MESSAGES  # every message succeeded once
    failed = [r for r in rows if r[5] == 0]
    assert len(failed) == len(failing) and all(r[2] == 1 for r in failed)
    _assert_never_concurrent(rows)
    assert bus.pending_count("jobs") == 0
    assert bus.dead_letters() == []
    bus.close()


def _crash_holding_lease(bus_path: str) -> None:
    bus = LocalBus(bus_path)
    got = bus.pull("jobs", max_messages=1)
    assert len(got) == 1
    os._exit(0)  # dies holding the lease: no ack, no nack, no close


def test_message_leased_by_a_crashed_process_is_redelivered(tmp_path):
    bus_path = tmp_path / "bus.sqlite"
    bus = LocalBus(bus_path)
    bus.create_topic(TopicConfig("jobs-topic"))
    bus.create_subscription(SubscriptionConfig("jobs", "jobs-topic", ack_deadline_seconds=1))
    mid = bus.publish("jobs-topic", b"work")
    proc = multiprocessing.get_context("fork").Process(target=_crash_holding_lease, args=(str(bus_path),))
    proc.start()
    proc.join(timeout=30)
    assert proc.exitcode == 0
    seen = []
    stats = run_worker(bus, "jobs", seen.append, timeout=30, poll_interval=0.05)
    assert not stats.timed_out
    assert [(m.message_id, m.delivery_attempt) for m in seen] == [(mid, 2)]
    bus.close()
