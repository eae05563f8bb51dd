"""Orchestrator behaviour on one transition: identity, duplicates, rules, gates, entities, status."""
from __future__ import annotations

import pytest

from orch_support import DAY, RAW, completion
from framework.errors import EnvelopeError, QualityGateError
from framework.orchestrator import TriggerDedup, resolve_entities
from framework.orchestrator.entities import load_entity_set
from framework.orchestrator.ledger import trigger_id


def deliver_all(orch, names=RAW, corr="run-1", **kw):
    return [orch.handle_completion(completion(n, execution_id=f"{corr}-{n}", correlation_id=corr, **kw)) for n in names]


def test_exactly_one_trigger_when_all_expected_complete(make_orch, bus):
    orch = make_orch()
    decisions = deliver_all(orch, entities_changed={"player": ["p"]})
    assert [d.action for d in decisions] == ["recorded"] * 4 + ["triggered"]
    assert bus.trigger_ids("analytics-trigger") == [decisions[-1].trigger_id]
    assert decisions[-1].trigger_id == trigger_id(orch.transition("raw->analytics"), DAY, 1)


def test_trigger_envelope_carries_correlation_lineage_and_dispatch(make_orch, bus):
    orch = make_orch()
    for i, n in enumerate(RAW):
        orch.handle_completion(completion(n, execution_id=f"e{i}", correlation_id=f"c{i}", root_correlation_id="root",
                                          record_count=10, entities_changed={"player": [f"p{i}"], "team": ["LAL"]}))
    (trig,) = bus.triggers()
    assert trig["kind"] == "trigger" and trig["phase"] == "analytics" and trig["processor_name"] == "orchestrator:raw"
    assert trig["parent_correlation_id"] == "c4" and trig["parent_execution_id"] == "e4"
    assert trig["root_correlation_id"] == "root" and trig["correlation_id"] == "root"
    assert trig["game_date"] == DAY and trig["round"] == 1 and trig["record_count"] == 50
    assert trig["entities_changed"] == {"player": ["p0", "p1", "p2", "p3", "p4"], "team": ["LAL"]}
    assert trig["metadata"]["expected"] == ["a1", "a2", "a3"]


def test_identity_resolves_aliases_and_tables(make_orch, bus):
    orch = make_orch()
    names = ["R1Processor", "demo_raw.r2_out", "r3_out", "demo.demo_raw.r4_out", "r5"]
    decisions = [orch.handle_completion(completion(n, execution_id=f"x{i}")) for i, n in enumerate(names)]
    assert decisions[-1].action == "triggered"
    assert [d.processor for d in decisions] == RAW


def test_unknown_processor_alerts_and_raises_without_dead_letter_topic(make_orch, alerts, bus):
    orch = make_orch()
    with pytest.raises(EnvelopeError, match="NbacGambookProcessor"):
        orch.handle_completion(completion("NbacGambookProcessor"))
    assert alerts.signatures() == ["orchestrator_unknown_processor"]
    assert bus.published == []


def test_unknown_processor_goes_to_the_dead_letter_topic(make_orch, alerts, bus):
    orch = make_orch(dead_letter_topic="orchestrator-dlq")
    d = orch.handle_completion(completion("r9"))
    assert d.action == "rejected" and "r9" in d.reason
    assert [(t, a["rejected_by"]) for t, _, a in bus.published] == [("orchestrator-dlq", "orchestrator")]
    assert alerts.signatures() == ["orchestrator_unknown_processor"]


def test_invalid_envelope_is_dead_lettered_with_its_reason(make_orch, bus, alerts):
    orch = make_orch(dead_letter_topic="dlq")
    d = orch.handle_completion(b'{"processor_name": "r1"}')
    assert d.action == "rejected" and "required" in d.reason
    assert bus.published[0][1] == b'{"processor_name": "r1"}'
    assert "invalid_envelope" in alerts.signatures()[0]


def test_a_trigger_envelope_is_not_a_completion(make_orch, bus):
    orch = make_orch(dead_letter_topic="dlq")
    deliver_all(orch)
    d = orch.handle_completion(bus.published[0][1])
    assert d.action == "rejected" and "completion" in d.reason


def test_last_phase_completion_is_ignored_with_a_reason(make_orch):
    orch = make_orch()
    d = orch.handle_completion(completion("c1", phase="precompute"))
    assert d.action == "ignored" and "no transition" in d.reason


def test_failed_non_critical_processor_alerts_and_waits(make_orch, alerts, bus):
    orch = make_orch()
    deliver_all(orch, RAW[:4])
    d = orch.handle_completion(completion("r5", execution_id="bad", status="failed", error_message="boom"))
    assert d.action == "recorded" and bus.published == []
    assert any("processor_failed" in s for s in alerts.signatures())
    d = orch.handle_completion(completion("r5", execution_id="retry"))
    assert d.action == "triggered"


def test_failed_critical_processor_blocks_and_alerts_once(make_orch, alerts, bus):
    orch = make_orch({"rule": {"type": "quorum", "quorum": 0.5}})
    d = orch.handle_completion(completion("r1", execution_id="f1", status="failed"))
    deliver_all(orch, RAW[1:])
    assert d.action == "blocked" and bus.published == []
    st = orch.status(DAY)[0]
    assert st.verdict == "blocked" and st.failed == ["r1"] and "r1" in st.reason
    assert sum("critical_failed" in s for s in alerts.signatures()) == 1
    assert orch.handle_completion(completion("r1", execution_id="ok1")).action == "triggered"


def test_monitor_mode_records_and_reports_but_never_publishes(make_orch, bus):
    orch = make_orch({"mode": "monitor"})
    decisions = deliver_all(orch)
    assert decisions[-1].action == "monitored" and bus.published == []
    st = orch.status()[0]
    assert st.state == "monitored" and "monitor mode" in st.reason and st.completed == RAW
    assert orch.sweep(orch.clock() + 10_000) == []


def test_quality_gate_failure_reaches_the_caller_and_writes_no_trigger(make_orch, bus, alerts):
    rows = {"r2": 0}
    orch = make_orch({"quality_gates": [{"name": "r2_rows", "processor": "r2", "min_rows": 1}]},
                     gate_checker=lambda gate, partition: rows[gate.processor])
    deliver_all(orch, RAW[:4])
    with pytest.raises(QualityGateError, match="demo_raw.r2_out has 0 row"):
        orch.handle_completion(completion("r5", execution_id="e5"))
    assert bus.published == [] and orch.status()[0].verdict == "gate_failed"
    assert any("quality_gate" in s for s in alerts.signatures())
    with pytest.raises(QualityGateError):  # a redelivery re-checks and still blocks
        orch.handle_completion(completion("r5", execution_id="e5"))
    rows["r2"] = 7
    d = orch.handle_completion(completion("r5", execution_id="e5"))
    assert d.action == "triggered" and len(bus.published) == 1


def test_quality_gate_without_a_checker_blocks(make_orch, bus):
    orch = make_orch({"quality_gates": [{"name": "g", "processor": "r2"}]})
    deliver_all(orch, RAW[:4])
    with pytest.raises(QualityGateError, match="no gate checker"):
        orch.handle_completion(completion("r5"))
    assert bus.published == []


def test_large_entity_sets_are_chunked_and_referenced(make_orch, bus, store):
    orch = make_orch()
    big = [f"player_{i:05d}" for i in range(5000)]
    for i, n in enumerate(RAW):
        ids = big if n == "r1" else [f"extra_{i}"]
        orch.handle_completion(completion(n, execution_id=f"e{i}", entities_changed={"player": ids}))
    (trig,) = bus.triggers()
    ref = trig["entities_changed"]["player"]
    assert ref["count"] == 5004 and isinstance(ref["ref"], str)
    assert resolve_entities(store, trig)["player"][:3] == big[:3]
    assert len(load_entity_set(store, ref)) == 5004
    ledger_doc = store.get("orch_ledger", f"raw->analytics|{DAY}")
    assert len(str(ledger_doc)) < 5000  # ids never enter the ledger document


def test_full_batch_completion_makes_the_trigger_full(make_orch, bus):
    orch = make_orch()
    deliver_all(orch, RAW[:4], entities_changed={"player": ["a"]})
    orch.handle_completion(completion("r5", execution_id="e5", entities_changed=None))
    (trig,) = bus.triggers()
    assert trig["entities_changed"] is None and trig["metadata"]["full_batch"] is True


def test_no_data_contributes_no_entities(make_orch, bus):
    orch = make_orch()
    deliver_all(orch, RAW[:4], entities_changed={"player": ["a"]})
    orch.handle_completion(completion("r5", execution_id="e5", status="no_data", entities_changed=None))
    assert bus.triggers()[0]["entities_changed"] == {"player": ["a"]}


def test_trigger_dedup_admits_each_id_once(store):
    dedup = TriggerDedup(store)
    assert dedup.first_time("t1") is True
    assert dedup.first_time("t1") is False
    dedup.forget("t1")
    assert dedup.first_time("t1") is True


def test_status_lists_expected_completed_failed_missing(make_orch):
    orch = make_orch()
    orch.handle_completion(completion("r1", execution_id="1"))
    orch.handle_completion(completion("r2", execution_id="2", status="partial"))
    orch.handle_completion(completion("r3", execution_id="3", status="failed"))
    (st,) = orch.status(DAY)
    d = st.to_dict()
    assert d["expected"] == RAW and d["completed"] == ["r1", "r2"] and d["failed"] == ["r3"]
    assert d["missing"] == ["r3", "r4", "r5"] and d["partial"] == ["r2"] and d["trigger_state"] is None
    assert orch.status("2000-01-01") == []


def test_a_blocking_gate_does_not_hold_back_an_older_pending_trigger(make_orch, bus, clock):
    rows = {"r2": 5}
    orch = make_orch({"quality_gates": [{"name": "r2_rows", "processor": "r2"}]}, gate_checker=lambda g, p: rows[g.processor])
    deliver_all(orch, RAW[:4])
    bus.fail_next = 1
    with pytest.raises(Exception, match="stays pending"):
        orch.handle_completion(completion("r5", execution_id="e5"))  # round 1 written, publish failed
    rows["r2"] = 0
    clock.advance(3600)
    bus.fail_next = 1  # the retry of round 1 fails again while round 2 opens
    with pytest.raises(Exception, match="stays pending"):
        orch.handle_completion(completion("r3", execution_id="u3", correlation_id="upd", entities_changed={"player": ["x"]}))
    assert bus.published == []
    clock.advance(120)
    with pytest.raises(QualityGateError):
        orch.sweep()  # round 2 blocked by the gate ...
    assert bus.trigger_ids() == [trigger_id(orch.transition("raw->analytics"), DAY, 1)]  # ... round 1 still went out
