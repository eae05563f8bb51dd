"""Pub/Sub specifics beyond the shared Bus conformance suite (tests/conformance)."""
from __future__ import annotations

import base64
import json
import time
from typing import Iterator

import pytest

from framework.backends.protocols import SubscriptionConfig, TopicConfig
from framework.backends.pubsub import MAX_ATTEMPTS_LABEL, PubSubBus, parse_push_body
from framework.errors import BackendError

from framework.backends.gcp_emulators import EMULATOR_PROJECT as PROJECT


@pytest.fixture
def bus() -> Iterator[PubSubBus]:
    b = PubSubBus(PROJECT)
    yield b
    b.close()


def _pull(bus: PubSubBus, sub: str, n: int = 1, timeout: float = 20.0) -> list:
    got: list = []
    deadline = time.monotonic() + timeout
    while len(got) < n and time.monotonic() < deadline:
        got.extend(bus.pull(sub, max_messages=10))
        time.sleep(0.05)
    assert len(got) >= n, f"only {len(got)} of {n} messages on {sub}"
    return got


def test_publish_carries_envelope_attributes(bus: PubSubBus, uid: str) -> None:
    topic, sub = f"{uid}-complete", f"{uid}-orch"
    bus.create_topic(TopicConfig(topic, {"Phase": "Raw"}))
    bus.create_subscription(SubscriptionConfig(sub, topic, ack_deadline_seconds=30))
    attrs = {"correlation_id": "c-1", "trigger_id": "t-1", "processor": "nbac_gamebook_player_stats", "partition": "2026-01-15"}
    mid = bus.publish(topic, b'{"status": "success"}', attrs)
    [msg] = _pull(bus, sub)
    assert (msg.message_id, msg.data, dict(msg.attributes)) == (mid, b'{"status": "success"}', attrs)
    assert msg.publish_time > 0
    assert [t.labels for t in bus.list_topics() if t.name == topic] == [{"phase": "raw"}]


def test_max_attempts_without_dead_letter_round_trips_through_a_label(bus: PubSubBus, uid: str) -> None:
    bus.create_topic(TopicConfig(f"{uid}-t"))
    bus.create_subscription(SubscriptionConfig(f"{uid}-s", f"{uid}-t", ack_deadline_seconds=45, max_delivery_attempts=12))
    got = bus.get_subscription(f"{uid}-s")
    assert got == SubscriptionConfig(f"{uid}-s", f"{uid}-t", 45, 12, None, None, None)
    raw = bus._subscriber.get_subscription(request={"subscription": bus.subscription_path(f"{uid}-s")})
    assert raw.labels[MAX_ATTEMPTS_LABEL] == "12" and not raw.dead_letter_policy.dead_letter_topic


def test_update_adds_and_removes_dead_letter_policy_and_push(bus: PubSubBus, uid: str) -> None:
    t, dlq, s = f"{uid}-t", f"{uid}-dlq", f"{uid}-s"
    bus.create_topic(TopicConfig(t))
    bus.create_topic(TopicConfig(dlq))
    bus.create_subscription(SubscriptionConfig(s, t, ack_deadline_seconds=10))
    with_dlq = SubscriptionConfig(s, t, 20, 7, dlq, None, "http://127.0.0.1:9/push")
    bus.update_subscription(with_dlq)
    assert bus.get_subscription(s) == with_dlq
    plain = SubscriptionConfig(s, t, 20, 5, None, None, None)
    bus.update_subscription(plain)
    assert bus.get_subscription(s) == plain


def test_pubsub_limits_are_refused_with_the_fix(bus: PubSubBus, uid: str) -> None:
    bus.create_topic(TopicConfig(f"{uid}-t"))
    bus.create_topic(TopicConfig(f"{uid}-dlq"))
    with pytest.raises(BackendError, match="5..100"):
        bus.create_subscription(SubscriptionConfig(f"{uid}-s", f"{uid}-t", 10, 2, f"{uid}-dlq"))
    with pytest.raises(BackendError, match="10..600"):
        bus.create_subscription(SubscriptionConfig(f"{uid}-s", f"{uid}-t", ack_deadline_seconds=5))
    with pytest.raises(BackendError, match=f"topic {uid}-missing"):
        bus.create_subscription(SubscriptionConfig(f"{uid}-s", f"{uid}-missing"))
    with pytest.raises(BackendError, match="subscription .* does not exist"):
        bus.pull(f"{uid}-nope")


def test_filter_cannot_change_in_place(bus: PubSubBus, uid: str) -> None:
    bus.create_topic(TopicConfig(f"{uid}-t"))
    bus.create_subscription(SubscriptionConfig(f"{uid}-s", f"{uid}-t", filter='attributes.kind = "player"'))
    with pytest.raises(BackendError, match="delete and recreate"):
        bus.update_subscription(SubscriptionConfig(f"{uid}-s", f"{uid}-t", filter='attributes.kind = "team"'))


def test_parse_push_body() -> None:
    body = json.dumps({
        "message": {"data": base64.b64encode(b"hello").decode(), "attributes": {"a": "1"},
                    "messageId": "42", "publishTime": "2026-01-15T14:00:00.123Z"},
        "subscription": "projects/p/subscriptions/s", "deliveryAttempt": 3,
    })
    msg = parse_push_body(body)
    assert (msg.data, dict(msg.attributes), msg.message_id, msg.delivery_attempt) == (b"hello", {"a": "1"}, "42", 3)
    assert msg.publish_time == pytest.approx(1768485600.123)
    with pytest.raises(BackendError, match="push body"):
        parse_push_body(b"{}")


def _bounded(fn) -> BaseException:
    """Run ``fn`` in a thread; it must end (generous bound, not a timing assertion) by raising."""
    import threading

    out: list[BaseException] = []

    def call() -> None:
        try:
            fn()
        except BaseException as exc:  # noqa: BLE001 - returned for inspection
            out.append(exc)

    worker = threading.Thread(target=call, daemon=True)
    worker.start()
    worker.join(120)
    assert not worker.is_alive(), "still retrying after 120 s with a 2 s timeout"
    return out[0]


def test_an_unreachable_emulator_fails_within_the_timeout_naming_the_resource(monkeypatch: pytest.MonkeyPatch) -> None:
    """The SDK's default retries kept retrying a dead endpoint for 60 s and more whatever the
    per-call timeout (create_topic, ack): every call now ends with the bus timeout."""
    monkeypatch.setenv("PUBSUB_EMULATOR_HOST", "127.0.0.1:9")
    dead = PubSubBus(PROJECT, timeout=2)
    try:
        for fn, name in ((lambda: dead.create_topic(TopicConfig("orders-complete")), "orders-complete"),
                         (lambda: dead.ack("orders-orch", ["a1"]), "orders-orch")):
            exc = _bounded(fn)
            assert isinstance(exc, BackendError) and name in str(exc), exc
    finally:
        dead.close()


def test_publish_many_delivers_every_message_once_with_its_attributes(bus: PubSubBus, uid: str) -> None:
    """The fan-out publishes its task messages in one batch (bench/bench_fanout_gcp.py)."""
    bus.create_topic(TopicConfig(f"{uid}-tasks"))
    bus.create_subscription(SubscriptionConfig(f"{uid}-workers", f"{uid}-tasks", ack_deadline_seconds=30))
    ids = bus.publish_many(f"{uid}-tasks", [(f"task{i}".encode(), {"i": str(i)}) for i in range(25)])
    assert len(set(ids)) == 25
    got: dict[bytes, dict] = {}
    deadline = time.monotonic() + 20
    while len(got) < 25 and time.monotonic() < deadline:
        batch = bus.pull(f"{uid}-workers", max_messages=25)
        bus.ack(f"{uid}-workers", [m.ack_id for m in batch])
        got.update({m.data: dict(m.attributes) for m in batch})
    assert got == {f"task{i}".encode(): {"i": str(i)} for i in range(25)}
    with pytest.raises(BackendError, match="does not exist"):
        bus.publish_many(f"{uid}-no-such-topic", [(b"x", None)])
