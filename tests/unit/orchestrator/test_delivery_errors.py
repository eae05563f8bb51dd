"""A completion the orchestrator fails on is nacked by its caller; the orchestrator records
why, so a dead-lettered completion is listed with its real reason instead of "no error
recorded (lease expired)" (the local bus knows only what a nack told it)."""
from __future__ import annotations

import json

import pytest

from orch_support import RAW, completion, dumps
from framework.backends.localbus import LocalBus
from framework.backends.protocols import SubscriptionConfig, TopicConfig
from framework.errors import BackendError, EnvelopeError
from framework.orchestrator.delivery_errors import DELIVERY_ERRORS, payload_key
from framework.drive.dead_letters import list_dead_letters


def test_publish_failure_is_recorded_and_shown_for_the_dead_lettered_completion(make_orch, bus, store, tmp_path) -> None:
    orch = make_orch()
    for name in RAW[:-1]:
        orch.handle_completion(dumps(completion(name, execution_id=f"x-{name}")))
    last = dumps(completion(RAW[-1], execution_id=f"x-{RAW[-1]}"))
    bus.fail_next = 2
    for _ in range(2):
        with pytest.raises(BackendError, match="injected publish failure"):
            orch.handle_completion(last)
    doc = store.get(DELIVERY_ERRORS, payload_key(last))
    assert doc["failures"] == 2 and "injected publish failure on analytics-trigger" in doc["first_error"]

    # the local bus gives up on the message after its attempts; the consumer nacked with no reason
    local = LocalBus(tmp_path / "bus.sqlite")
    local.create_topic(TopicConfig("raw-complete"))
    local.create_topic(TopicConfig("raw-dlq"))
    local.create_subscription(SubscriptionConfig("orch", "raw-complete", max_delivery_attempts=2, dead_letter_topic="raw-dlq"))
    local.publish("raw-complete", last)
    for _ in range(3):
        for m in local.pull("orch"):
            local.nack("orch", [m.ack_id])
    [letter] = list_dead_letters(local, orch.project, store)
    assert letter.reason.startswith("2 delivery attempts failed; first error: ") and "injected publish failure" in letter.reason
    [bare] = list_dead_letters(local, orch.project, None)  # without the store: what the bus alone knows
    assert "no error recorded" in bare.reason
    local.close()


def test_refused_envelope_without_a_dead_letter_topic_is_recorded_before_raising(make_orch, store) -> None:
    orch = make_orch()
    bad = json.dumps({"processor_name": "r1"}).encode()
    with pytest.raises(EnvelopeError):
        orch.handle_completion(bad)
    assert "invalid envelope" in store.get(DELIVERY_ERRORS, payload_key(bad))["first_error"]
