"""LocalBus semantics, one behaviour per test, time moved by an injected clock."""
from __future__ import annotations

import json
import sqlite3

import pytest

from framework.backends.localbus import DEAD_LETTER_REASON, DELETED_TOPIC, LocalBus
from framework.backends.protocols import Bus, SubscriptionConfig, TopicConfig
from framework.errors import BackendError


class Clock:
    def __init__(self, now: float = 1_000_000.0):
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def bus(tmp_path, clock):
    b = LocalBus(tmp_path / "bus.sqlite", clock=clock)
    b.create_topic(TopicConfig("events"))
    b.create_topic(TopicConfig("events-dlq"))
    b.create_subscription(SubscriptionConfig("work", "events", ack_deadline_seconds=30, max_delivery_attempts=3,
                                             dead_letter_topic="events-dlq"))
    b.create_subscription(SubscriptionConfig("dlq-sub", "events-dlq"))
    yield b
    b.close()


def test_is_a_bus_without_push(bus):
    assert isinstance(bus, Bus)
    assert bus.supports_push is False


def test_publish_pull_ack_roundtrip_keeps_data_and_attributes(bus):
    mid = bus.publish("events", b'{"x": 1}', {"processor": "p1", "game_date": "2024-01-15"})
    [msg] = bus.pull("work")
    assert (msg.message_id, msg.data, dict(msg.attributes), msg.delivery_attempt) == (mid, b'{"x": 1}', {"processor": "p1", "game_date": "2024-01-15"}, 1)
    bus.ack("work", [msg.ack_id])
    assert bus.pending_count("work") == 0
    assert bus.pull("work") == []


def test_leased_message_is_not_delivered_again_before_deadline(bus, clock):
    bus.publish("events", b"a")
    assert len(bus.pull("work")) == 1
    clock.advance(29.9)
    assert bus.pull("work") == []
    assert bus.pending_count("work") == 1


def test_unacked_message_is_redelivered_after_deadline_with_next_attempt(bus, clock):
    bus.publish("events", b"a")
    [first] = bus.pull("work")
    clock.advance(30)
    [again] = bus.pull("work")
    assert again.message_id == first.message_id
    assert again.delivery_attempt == 2
    assert again.ack_id != first.ack_id


def test_late_ack_of_a_re_leased_message_is_ignored(bus, clock):
    bus.publish("events", b"a")
    [first] = bus.pull("work")
    clock.advance(31)
    [second] = bus.pull("work")
    bus.ack("work", [first.ack_id])  # stale lease: the second holder still has it
    assert bus.pending_count("work") == 1
    bus.ack("work", [second.ack_id])
    assert bus.pending_count("work") == 0


def test_nack_makes_message_available_at_once(bus):
    bus.publish("events", b"a")
    [msg] = bus.pull("work")
    bus.nack("work", [msg.ack_id])
    [again] = bus.pull("work")
    assert (again.message_id, again.delivery_attempt) == (msg.message_id, 2)


def test_nack_records_the_error_for_status(bus):
    bus.publish("events", b"a", {"k": "v"})
    [msg] = bus.pull("work")
    bus.nack("work", [msg.ack_id], error="ValueError: bad row")
    [pending] = bus.pending("work")
    assert pending.last_error == "ValueError: bad row"
    assert pending.delivery_attempts == 1
    assert pending.leased is False


def test_modify_ack_deadline_extends_the_lease(bus, clock):
    bus.publish("events", b"a")
    [msg] = bus.pull("work")
    clock.advance(25)
    bus.modify_ack_deadline("work", [msg.ack_id], 60)
    clock.advance(50)  # 75 s after the pull: past the original deadline, inside the extension
    assert bus.pull("work") == []
    clock.advance(11)
    [again] = bus.pull("work")
    assert again.delivery_attempt == 2


def test_modify_ack_deadline_zero_is_a_nack(bus):
    bus.publish("events", b"a")
    [msg] = bus.pull("work")
    bus.modify_ack_deadline("work", [msg.ack_id], 0)
    assert [m.message_id for m in bus.pull("work")] == [msg.message_id]


def test_max_attempts_moves_message_to_dead_letter_topic_with_attributes(bus, clock):
    mid = bus.publish("events", b"payload", {"processor": "p1"})
    for attempt in (1, 2, 3):
        [msg] = bus.pull("work")
        assert msg.delivery_attempt == attempt
        bus.nack("work", [msg.ack_id], error=f"boom {attempt}")
    assert bus.pull("work") == []
    assert bus.pending_count("work") == 0
    [dead] = bus.pull("dlq-sub")
    assert dead.data == b"payload"
    attrs = dict(dead.attributes)
    assert attrs["processor"] == "p1"
    assert attrs["dead_letter_reason"] == DEAD_LETTER_REASON
    assert attrs["source_subscription"] == "work"
    assert attrs["source_topic"] == "events"
    assert attrs["source_message_id"] == mid
    assert attrs["delivery_attempt"] == "3"
    assert attrs["last_error"] == "boom 3"
    assert attrs["CloudPubSubDeadLetterSourceDeliveryCount"] == "3"
    [letter] = bus.dead_letters("events-dlq")
    assert (letter.source_subscription, letter.message_id, letter.delivery_attempt, letter.last_error) == ("work", mid, 3, "boom 3")


def test_expired_leases_count_as_attempts_towards_dead_letter(bus, clock):
    bus.publish("events", b"a")
    for _ in range(3):
        assert len(bus.pull("work")) == 1
        clock.advance(30)
    assert bus.pull("work") == []
    assert len(bus.dead_letters()) == 1


def test_without_dead_letter_topic_messages_are_redelivered_forever(bus):
    bus.create_subscription(SubscriptionConfig("nodlq", "events", max_delivery_attempts=2))
    bus.publish("events", b"a")
    for attempt in range(1, 6):
        [msg] = bus.pull("nodlq")
        assert msg.delivery_attempt == attempt
        bus.nack("nodlq", [msg.ack_id])
    assert bus.dead_letters() == []
    assert bus.pending_count("nodlq") == 1


def test_dead_letters_purge(bus):
    bus.publish("events", b"a")
    for _ in range(3):
        [msg] = bus.pull("work")
        bus.nack("work", [msg.ack_id])
    assert bus.purge_dead_letters("other-topic") == 0
    assert bus.purge_dead_letters("events-dlq") == 1
    assert bus.dead_letters() == []


def test_fan_out_to_every_subscription(bus):
    bus.create_subscription(SubscriptionConfig("audit", "events"))
    bus.publish("events", b"a")
    assert [m.data for m in bus.pull("work")] == [b"a"]
    [audit] = bus.pull("audit")
    bus.ack("audit", [audit.ack_id])
    assert bus.pending_count("work") == 1  # acking one subscription leaves the other's copy


def test_no_delivery_to_subscription_created_after_publish(bus):
    bus.publish("events", b"before")
    bus.create_subscription(SubscriptionConfig("late", "events"))
    bus.publish("events", b"after")
    assert [m.data for m in bus.pull("late")] == [b"after"]


def test_message_without_subscription_is_dropped(tmp_path, clock):
    b = LocalBus(tmp_path / "b.sqlite", clock=clock)
    b.create_topic(TopicConfig("lonely"))
    b.publish("lonely", b"x")
    b.create_subscription(SubscriptionConfig("s", "lonely"))
    assert b.pull("s") == []
    assert sqlite3.connect(tmp_path / "b.sqlite").execute("SELECT COUNT(*) FROM messages").fetchone()[0] == 0


def test_filter_selects_messages_by_attribute(bus):
    bus.create_subscription(SubscriptionConfig("players", "events", filter='attributes.entity = "player" AND attributes:game_date'))
    bus.publish("events", b"1", {"entity": "player", "game_date": "d"})
    bus.publish("events", b"2", {"entity": "team", "game_date": "d"})
    bus.publish("events", b"3", {"entity": "player"})
    assert [m.data for m in bus.pull("players")] == [b"1"]
    assert len(bus.pull("work")) == 3


def test_invalid_filter_is_rejected_at_creation(bus):
    with pytest.raises(BackendError, match="invalid subscription filter"):
        bus.create_subscription(SubscriptionConfig("bad", "events", filter="attributes.x == 'y'"))
    assert "bad" not in {s.name for s in bus.list_subscriptions()}


def test_fifo_by_publish_order_and_max_messages(bus):
    for i in range(5):
        bus.publish("events", str(i).encode())
    assert [m.data for m in bus.pull("work", max_messages=2)] == [b"0", b"1"]
    assert [m.data for m in bus.pull("work", max_messages=10)] == [b"2", b"3", b"4"]


def test_redelivered_message_comes_before_newer_ones(bus):
    bus.publish("events", b"old")
    [old] = bus.pull("work")
    bus.publish("events", b"new")
    bus.nack("work", [old.ack_id])
    assert [m.data for m in bus.pull("work")] == [b"old", b"new"]


def test_messages_survive_reopen(tmp_path, clock):
    path = tmp_path / "durable.sqlite"
    b = LocalBus(path, clock=clock)
    b.create_topic(TopicConfig("t"))
    b.create_subscription(SubscriptionConfig("s", "t", ack_deadline_seconds=10))
    b.publish("t", b"keep", {"a": "1"})
    [leased] = b.pull("s")
    b.close()
    clock.advance(10)
    reopened = LocalBus(path, clock=clock)
    [msg] = reopened.pull("s")
    assert (msg.data, dict(msg.attributes), msg.delivery_attempt) == (b"keep", {"a": "1"}, 2)
    assert [t.name for t in reopened.list_topics()] == ["t"]
    reopened.close()


def test_topic_and_subscription_admin(bus):
    bus.create_topic(TopicConfig("events", labels={"team": "data"}))  # idempotent, updates labels
    assert {t.name: dict(t.labels) for t in bus.list_topics()}["events"] == {"team": "data"}
    bus.create_subscription(SubscriptionConfig("work", "events"))  # exists on same topic: no-op
    with pytest.raises(BackendError, match="already exists on topic events"):
        bus.create_subscription(SubscriptionConfig("work", "events-dlq"))
    updated = SubscriptionConfig("work", "events", ack_deadline_seconds=90, max_delivery_attempts=7, dead_letter_topic=None, filter="attributes:x")
    bus.update_subscription(updated)
    assert {s.name: s for s in bus.list_subscriptions()}["work"] == updated
    with pytest.raises(BackendError, match="does not exist"):
        bus.update_subscription(SubscriptionConfig("ghost", "events"))
    bus.delete_subscription("work")
    bus.delete_subscription("work")  # missing: no-op
    assert "work" not in {s.name for s in bus.list_subscriptions()}


def test_deleting_a_topic_detaches_its_subscriptions(bus):
    bus.delete_topic("events")
    assert {s.name: s.topic for s in bus.list_subscriptions()}["work"] == DELETED_TOPIC
    with pytest.raises(BackendError, match="topic events does not exist"):
        bus.publish("events", b"x")


@pytest.mark.parametrize("call", [
    lambda b: b.publish("nope", b"x"),
    lambda b: b.pull("nope"),
    lambda b: b.create_subscription(SubscriptionConfig("s2", "nope")),
    lambda b: b.create_subscription(SubscriptionConfig("s3", "events", dead_letter_topic="nope")),
])
def test_missing_names_raise_backend_errors_naming_them(bus, call):
    with pytest.raises(BackendError, match="nope"):
        call(bus)


def test_publish_rejects_non_string_attributes_and_non_bytes(bus):
    with pytest.raises(BackendError, match="attribute values must be strings"):
        bus.publish("events", b"x", {"n": 1})  # type: ignore[dict-item]
    with pytest.raises(BackendError, match="data must be bytes"):
        bus.publish("events", "text")  # type: ignore[arg-type]


def test_malformed_ack_id(bus):
    with pytest.raises(BackendError, match="malformed ack id"):
        bus.ack("work", ["garbage"])


def test_dead_letter_attributes_are_json_roundtrippable(bus):
    bus.publish("events", json.dumps({"a": 1}).encode())
    for _ in range(3):
        [m] = bus.pull("work")
        bus.nack("work", [m.ack_id])
    [d] = bus.dead_letters()
    assert json.loads(d.data) == {"a": 1}


def test_lock_held_too_long_is_a_backend_error_naming_the_file(tmp_path, clock):
    path = tmp_path / "locked.sqlite"
    b = LocalBus(path, clock=clock, busy_timeout=0.1)
    b.create_topic(TopicConfig("t"))
    other = sqlite3.connect(str(path), isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    try:
        with pytest.raises(BackendError, match="locked.sqlite stayed locked"):
            b.publish("t", b"x")
        assert [t.name for t in b.list_topics()] == ["t"]  # WAL: readers are not blocked by the writer
    finally:
        other.execute("ROLLBACK")
        other.close()
    b.publish("t", b"x")
    b.close()


def test_write_keeps_the_original_error_when_sqlite_already_rolled_back(bus):
    """On disk-full or I/O errors SQLite ends the transaction itself; the real error must
    reach the caller, not 'cannot rollback - no transaction is active'."""
    with pytest.raises(RuntimeError, match="the real cause"):
        with bus._write() as conn:
            conn.execute("ROLLBACK")
            raise RuntimeError("the real cause")
    bus.create_topic(TopicConfig("after"))  # the connection is usable again


def test_purge_up_to_keeps_dead_letters_that_arrived_after_the_listing(bus):
    """`pipectl bus dead-letters --purge` prints, then purges: a letter dead-lettered in
    between must survive (it was never shown to anyone)."""
    for data in (b"a", b"b"):
        bus.publish("events", data)
        for _ in range(3):
            [msg] = bus.pull("work")
            bus.nack("work", [msg.ack_id])
        if data == b"a":
            listed = bus.dead_letters()
    assert len(listed) == 1 and len(bus.dead_letters()) == 2
    assert bus.purge_dead_letters(up_to=max(d.id for d in listed)) == 1
    assert [d.data for d in bus.dead_letters()] == [b"b"]


class _FailingCommit:
    """Delegates to a sqlite3 connection; the first COMMIT fails as on a full disk."""

    def __init__(self, conn):
        self._conn, self.failed = conn, False

    def execute(self, sql, *args):
        if sql == "COMMIT" and not self.failed:
            self.failed = True
            raise sqlite3.OperationalError("database or disk is full")
        return self._conn.execute(sql, *args)

    def __getattr__(self, name):
        return getattr(self._conn, name)


def test_a_failed_commit_is_a_backend_error_and_leaves_the_bus_usable(bus):
    """A COMMIT that fails used to leave the connection inside the transaction: every later
    BEGIN failed with 'cannot start a transaction within a transaction'."""
    real = bus._conn
    bus._conn = _FailingCommit(real)
    with pytest.raises(BackendError, match="disk is full") as err:
        bus.publish("events", b"lost")
    assert str(bus.path) in err.value.message
    bus.publish("events", b"kept")
    assert [m.data for m in bus.pull("work")] == [b"kept"]
