"""Completions are checked against the manifest, not only the envelope schema: undeclared
entity kinds, a phase other than the processor's and an impossible partition are rejected
with the field named, alerted and dead-lettered (nothing lost, nothing forwarded)."""
from __future__ import annotations

import json

import pytest

from framework.errors import EnvelopeError
from framework.manifest.partition import parse_partition
from orch_support import RAW, completion


@pytest.mark.parametrize("kind", ["players", "Player", "PLAYER"])
def test_an_undeclared_entity_kind_is_rejected_and_dead_lettered(make_orch, bus, alerts, kind):
    orch = make_orch(dead_letter_topic="dlq")
    message = completion("r1", entities_changed={kind: ["lebronjames"]})
    d = orch.handle_completion(message)
    assert d.action == "rejected" and f"entities_changed.{kind}: undeclared entity kind" in d.reason
    assert "did you mean 'player'?" in d.reason
    (topic, data, attrs), = bus.published
    assert topic == "dlq" and json.loads(data)["entities_changed"] == {kind: ["lebronjames"]}
    assert attrs["rejected_by"] == "orchestrator" and "entities_changed" in attrs["error"]
    assert alerts.signatures() == ["orchestrator_contract_violation"]


def test_a_rejected_completion_is_not_counted_nor_forwarded(make_orch, bus):
    orch = make_orch(dead_letter_topic="dlq")
    orch.handle_completion(completion("r1", entities_changed={"players": ["x"]}))
    decisions = [orch.handle_completion(completion(n, execution_id=f"e{n}")) for n in RAW[1:]]
    assert decisions[-1].action != "triggered"  # r1's only completion was refused
    d = orch.handle_completion(completion("r1", execution_id="again", entities_changed={"player": ["x"]}))
    assert d.action == "triggered"
    trigger = bus.triggers("analytics-trigger")[0]
    assert set(trigger["entities_changed"] or {}) <= {"player"}


def test_a_phase_that_disagrees_with_the_processor_is_rejected(make_orch, bus, alerts):
    orch = make_orch(dead_letter_topic="dlq")
    d = orch.handle_completion(completion("r1", phase="analytics"))
    assert d.action == "rejected" and "phase: 'analytics' but processor 'r1' is in phase 'raw'" in d.reason
    assert [t for t, _, _ in bus.published] == ["dlq"]


def test_without_a_dead_letter_topic_the_violation_raises_for_the_bus_to_redeliver(make_orch, alerts):
    orch = make_orch()
    with pytest.raises(EnvelopeError, match="partition: '2026-13-01' is not a date"):
        orch.handle_completion(completion("r1", partition="2026-13-01"))
    assert alerts.signatures() == ["orchestrator_contract_violation"]


@pytest.mark.parametrize("value,ptype,canonical", [
    ("2025-01-05", "DATE", "2025-01-05"), (" 2025-01-05 ", "DATE", "2025-01-05"), ("42", "INT64", "42"),
    ("-7", "INT64", "-7"), ("eu-west", "STRING", "eu-west"), ("2025-01-05T10:00:00Z", "TIMESTAMP", "2025-01-05T10:00:00+00:00"),
])
def test_partitions_parse_by_type(value, ptype, canonical):
    assert parse_partition(value, ptype) == canonical


@pytest.mark.parametrize("value,ptype,message", [
    ("tomorrow", "DATE", "not a date"), ("2025-13-01", "DATE", "month must be in 1..12"), ("2025-02-30", "DATE", "not a date"),
    ("", "DATE", "empty"), ("4.5", "INT64", "not an integer"), ("a/b", "STRING", "not a usable"), ("x\x1b", "STRING", "not a usable"),
    ("noon", "TIMESTAMP", "not a timestamp"),
])
def test_bad_partitions_say_what_was_expected(value, ptype, message):
    with pytest.raises(ValueError, match=message):
        parse_partition(value, ptype)
