"""The Bus contract every implementation must meet (local bus now, Pub/Sub emulator later).

Only behaviour both Google Pub/Sub and the local bus guarantee is asserted here: e.g.
``delivery_attempt`` is checked only on subscriptions with a dead-letter policy (Pub/Sub
fills it in only then), and extensions such as the local bus's ``last_error`` are tested in
tests/unit/backends/. See conftest.py for the harness and how to add an implementation.
"""
from __future__ import annotations

import pytest

from framework.backends.protocols import Bus, SubscriptionConfig, TopicConfig
from framework.errors import BackendError


def _topology(h, with_dlq: bool = True, max_attempts: int = 5):
    topic, dlq, sub, dlq_sub = h.name("events"), h.name("events-dlq"), h.name("work"), h.name("dlq-sub")
    h.bus.create_topic(TopicConfig(topic))
    h.bus.create_topic(TopicConfig(dlq))
    h.bus.create_subscription(SubscriptionConfig(dlq_sub, dlq, ack_deadline_seconds=h.min_ack_deadline))
    h.bus.create_subscription(SubscriptionConfig(sub, topic, ack_deadline_seconds=h.min_ack_deadline, max_delivery_attempts=max_attempts,
                                                 dead_letter_topic=dlq if with_dlq else None))
    return topic, sub, dlq_sub


def test_implements_the_protocol(harness):
    assert isinstance(harness.bus, Bus)
    assert isinstance(harness.bus.supports_push, bool)


def test_publish_pull_ack(harness):
    h = harness
    topic, sub, _ = _topology(h)
    mid = h.bus.publish(topic, b"hello", {"processor": "p1", "game_date": "2024-01-15"})
    assert isinstance(mid, str) and mid
    [msg] = h.pull_until(sub, 1)
    assert (msg.message_id, msg.data, dict(msg.attributes)) == (mid, b"hello", {"processor": "p1", "game_date": "2024-01-15"})
    assert msg.delivery_attempt == 1
    h.bus.ack(sub, [msg.ack_id])
    h.pull_nothing(sub)


def test_fan_out_to_every_subscription(harness):
    h = harness
    topic, sub, _ = _topology(h)
    other = h.name("audit")
    h.bus.create_subscription(SubscriptionConfig(other, topic, ack_deadline_seconds=h.min_ack_deadline))
    h.bus.publish(topic, b"x")
    assert [m.data for m in h.pull_until(sub, 1)] == [b"x"]
    assert [m.data for m in h.pull_until(other, 1)] == [b"x"]


def test_subscription_created_after_publish_gets_only_later_messages(harness):
    h = harness
    topic, _, _ = _topology(h)
    h.bus.publish(topic, b"before")
    late = h.name("late")
    h.bus.create_subscription(SubscriptionConfig(late, topic, ack_deadline_seconds=h.min_ack_deadline))
    h.bus.publish(topic, b"after")
    got = h.pull_until(late, 1)
    h.bus.ack(late, [m.ack_id for m in got])
    assert [m.data for m in got] == [b"after"]
    h.pull_nothing(late)


def test_nack_redelivers_with_next_attempt(harness):
    h = harness
    topic, sub, _ = _topology(h)
    h.bus.publish(topic, b"x")
    [first] = h.pull_until(sub, 1)
    h.bus.nack(sub, [first.ack_id])
    [again] = h.pull_until(sub, 1)
    assert again.message_id == first.message_id
    assert again.delivery_attempt == 2


def test_unacked_message_is_redelivered_after_the_ack_deadline(harness):
    h = harness
    topic, sub, _ = _topology(h)
    h.bus.publish(topic, b"x")
    [first] = h.pull_until(sub, 1)
    h.advance(h.min_ack_deadline + 1)
    [again] = h.pull_until(sub, 1, timeout=h.min_ack_deadline * 3)
    assert again.message_id == first.message_id and again.delivery_attempt == 2


def test_max_attempts_sends_to_the_dead_letter_topic(harness):
    h = harness
    topic, sub, dlq_sub = _topology(h, max_attempts=5)
    h.bus.publish(topic, b"poison", {"processor": "p1"})
    for attempt in range(1, 6):
        [msg] = h.pull_until(sub, 1)
        assert msg.delivery_attempt == attempt
        h.bus.nack(sub, [msg.ack_id])
    # The source subscription is checked first: the Pub/Sub emulator forwards to the
    # dead-letter topic only when the source subscription is pulled again (the service does
    # it in the background); both orders are valid on the real service and the local bus.
    h.pull_nothing(sub)
    [dead] = h.pull_until(dlq_sub, 1)
    assert dead.data == b"poison" and dead.attributes["processor"] == "p1"


def test_filter_on_attributes(harness):
    h = harness
    topic, _, _ = _topology(h)
    players = h.name("players")
    h.bus.create_subscription(SubscriptionConfig(players, topic, ack_deadline_seconds=h.min_ack_deadline,
                                                 filter='attributes.entity = "player" AND attributes:game_date'))
    h.bus.publish(topic, b"1", {"entity": "player", "game_date": "d"})
    h.bus.publish(topic, b"2", {"entity": "team", "game_date": "d"})
    h.bus.publish(topic, b"3", {"entity": "player"})
    got = h.pull_until(players, 1)
    h.bus.ack(players, [m.ack_id for m in got])
    assert [m.data for m in got] == [b"1"]
    h.pull_nothing(players)


def test_admin_listing_and_updates(harness):
    h = harness
    topic, sub, _ = _topology(h)
    assert topic in {t.name for t in h.bus.list_topics()}
    h.bus.create_topic(TopicConfig(topic))  # idempotent
    h.bus.create_subscription(SubscriptionConfig(sub, topic, ack_deadline_seconds=h.min_ack_deadline))  # same topic: no-op
    updated = SubscriptionConfig(sub, topic, ack_deadline_seconds=h.min_ack_deadline * 2, max_delivery_attempts=7, dead_letter_topic=h.name("events-dlq"))
    h.bus.update_subscription(updated)
    found = {s.name: s for s in h.bus.list_subscriptions()}[sub]
    assert (found.topic, found.ack_deadline_seconds, found.max_delivery_attempts, found.dead_letter_topic) == (
        topic, h.min_ack_deadline * 2, 7, h.name("events-dlq"))
    h.bus.delete_subscription(sub)
    h.bus.delete_subscription(sub)  # missing: no-op
    assert sub not in {s.name for s in h.bus.list_subscriptions()}


def test_publishing_to_a_missing_topic_is_a_backend_error(harness):
    with pytest.raises(BackendError, match="missing-topic"):
        harness.bus.publish(harness.name("missing-topic"), b"x")


def test_modify_ack_deadline_when_supported(harness):
    h = harness
    if not hasattr(h.bus, "modify_ack_deadline"):
        pytest.skip("implementation has no modify_ack_deadline")
    topic, sub, _ = _topology(h)
    h.bus.publish(topic, b"x")
    [msg] = h.pull_until(sub, 1)
    h.bus.modify_ack_deadline(sub, [msg.ack_id], 0)
    [again] = h.pull_until(sub, 1)
    assert again.message_id == msg.message_id
