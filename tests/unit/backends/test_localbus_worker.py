"""dispatch/run_worker on the local bus: ack on success, nack + recorded error on failure."""
from __future__ import annotations

import logging
import threading

import pytest

from framework.backends.localbus import LocalBus
from framework.backends.protocols import SubscriptionConfig, TopicConfig
from framework.backends.bus_worker import dispatch, run_worker


@pytest.fixture
def bus(tmp_path):
    b = LocalBus(tmp_path / "bus.sqlite")
    b.create_topic(TopicConfig("t"))
    b.create_topic(TopicConfig("t-dlq"))
    b.create_subscription(SubscriptionConfig("s", "t", ack_deadline_seconds=60, max_delivery_attempts=5, dead_letter_topic="t-dlq"))
    yield b
    b.close()


def test_dispatch_acks_handled_messages(bus):
    for i in range(3):
        bus.publish("t", str(i).encode())
    seen = []
    stats = dispatch(bus, "s", lambda m: seen.append(m.data), max_messages=10)
    assert (stats.pulled, stats.acked, stats.nacked) == (3, 3, 0)
    assert seen == [b"0", b"1", b"2"]
    assert bus.pending_count("s") == 0


def test_failure_is_logged_recorded_and_nacked(bus, caplog):
    bus.publish("t", b"x")

    def fail(_msg):
        raise ValueError("row 7 has no player_lookup")

    with caplog.at_level(logging.ERROR, logger="framework.backends.bus_worker"):
        stats = dispatch(bus, "s", fail)
    assert stats.nacked == 1 and stats.acked == 0
    assert stats.failures[0].error == "ValueError: row 7 has no player_lookup"
    assert "row 7 has no player_lookup" in caplog.text
    [pending] = bus.pending("s")
    assert pending.last_error.startswith("ValueError: row 7 has no player_lookup")
    assert "Traceback" in pending.last_error
    assert not pending.leased  # nacked: available again at once


def test_run_worker_stops_when_idle_and_retries_failures(bus):
    for i in range(10):
        bus.publish("t", str(i).encode())
    attempts: dict[bytes, int] = {}

    def flaky(msg):
        attempts[msg.data] = attempts.get(msg.data, 0) + 1
        if msg.data == b"3" and msg.delivery_attempt < 3:
            raise RuntimeError("transient")

    stats = run_worker(bus, "s", flaky, timeout=30)
    assert stats.acked == 10 and stats.nacked == 2 and not stats.timed_out
    assert attempts[b"3"] == 3
    assert bus.pending_count("s") == 0


def test_always_failing_message_ends_in_dead_letters(bus):
    bus.publish("t", b"poison")

    def fail(_msg):
        raise RuntimeError("cannot parse")

    stats = run_worker(bus, "s", fail, timeout=30)
    assert stats.nacked == 5 and stats.acked == 0
    [dead] = bus.dead_letters("t-dlq")
    assert dead.delivery_attempt == 5 and dead.last_error.startswith("RuntimeError: cannot parse")


def test_run_worker_waits_for_messages_leased_elsewhere_then_times_out(bus):
    bus.publish("t", b"held")
    assert len(bus.pull("s")) == 1  # another worker holds the lease
    stats = run_worker(bus, "s", lambda m: None, timeout=0.2, poll_interval=0.01)
    assert stats.timed_out and stats.pulled == 0


def test_run_worker_honours_stop_event(bus):
    stop = threading.Event()
    stop.set()
    stats = run_worker(bus, "s", lambda m: None, stop_when_idle=False, stop=stop)
    assert stats.pulled == 0 and not stats.timed_out


def test_bus_dispatch_method_delegates(bus):
    bus.publish("t", b"a")
    stats = bus.dispatch("s", lambda m: None)
    assert (stats.pulled, stats.acked) == (1, 1)
