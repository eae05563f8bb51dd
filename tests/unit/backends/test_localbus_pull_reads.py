"""A pull that finds nothing due answers from one read, without the write lock.

The statements are the ones SQLite really ran (``set_trace_callback`` on the bus's own
connection), so the test fails if an empty poll takes ``BEGIN IMMEDIATE`` again, or if a
claim ever stops taking it."""
from __future__ import annotations

import pytest

from framework.backends.localbus import LocalBus
from framework.backends.protocols import SubscriptionConfig, TopicConfig
from framework.errors import BackendError


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def traced(tmp_path):
    clock = Clock()
    bus = LocalBus(tmp_path / "bus.sqlite", clock=clock)
    bus.create_topic(TopicConfig("events"))
    bus.create_topic(TopicConfig("events-dlq"))
    bus.create_subscription(SubscriptionConfig("work", "events", ack_deadline_seconds=30, max_delivery_attempts=2,
                                               dead_letter_topic="events-dlq"))
    bus.create_subscription(SubscriptionConfig("dlq-sub", "events-dlq"))
    statements: list[str] = []
    bus._conn.set_trace_callback(statements.append)
    yield bus, clock, statements
    bus.close()


def _begins(statements: list[str]) -> int:
    return sum(1 for s in statements if s.startswith("BEGIN"))


def test_empty_pull_takes_no_write_transaction(traced):
    bus, _, statements = traced
    assert bus.pull("work") == []
    assert _begins(statements) == 0 and len(statements) == 1


def test_pull_with_a_message_claims_it_inside_begin_immediate(traced):
    bus, _, statements = traced
    bus.publish("events", b"x")
    statements.clear()
    [msg] = bus.pull("work")
    assert msg.data == b"x" and msg.delivery_attempt == 1
    assert "BEGIN IMMEDIATE" in statements
    assert any(s.startswith("UPDATE deliveries SET attempts") for s in statements)
    statements.clear()
    assert bus.pull("work") == []  # leased: not due again before its deadline, and no lock taken
    assert _begins(statements) == 0


def test_lease_expiry_and_dead_lettering_still_go_through_the_claim(traced):
    bus, clock, statements = traced
    bus.publish("events", b"x")
    bus.pull("work")
    clock.now += 31
    [again] = bus.pull("work")
    assert again.delivery_attempt == 2
    clock.now += 31  # the last attempt expired: the next pull dead-letters it
    statements.clear()
    assert bus.pull("work") == []
    assert "BEGIN IMMEDIATE" in statements
    [dead] = bus.pull("dlq-sub")
    assert dead.data == b"x" and dead.attributes["source_subscription"] == "work"


def test_missing_subscription_still_raises(traced):
    bus, _, _ = traced
    with pytest.raises(BackendError, match="subscription nope does not exist"):
        bus.pull("nope")
