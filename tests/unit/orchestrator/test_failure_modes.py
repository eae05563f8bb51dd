"""One test per incident class of ../shared/FAILURE-MODES.md (10-17, 22-24), named after it."""
from __future__ import annotations

import json
import sqlite3
import threading

import pytest

from orch_support import DAY, RAW, FlakyStore, InjectedCrash, completion
from framework.backends.sqlite_state import SQLiteStateStore
from framework.errors import BackendError, EnvelopeError, QualityGateError
from framework.orchestrator import Orchestrator, TriggerDedup, make_envelope
from framework.alerts import MemorySink


def deliver(orch, names, **kw):
    return [orch.handle_completion(completion(n, execution_id=f"e-{n}", **kw)) for n in names]


def test_fm10_trigger_committed_then_publish_failed_is_republished_not_forgotten(make_orch, bus, alerts):
    orch = make_orch()
    deliver(orch, RAW[:4])
    bus.fail_next = 1
    with pytest.raises(BackendError, match="stays pending"):
        orch.handle_completion(completion("r5", execution_id="e-r5"))
    assert orch.status()[0].trigger_state == "pending"
    assert any("publish_failed" in s for s in alerts.signatures())
    d = orch.handle_completion(completion("r5", execution_id="e-r5"))  # redelivery: a duplicate
    assert d.action == "duplicate" and len(d.published) == 1
    assert orch.status()[0].trigger_state == "published" and len(bus.published) == 1


def test_fm11_completion_is_recorded_only_inside_the_transaction(tmp_path, bus, clock):
    from orch_support import write_project

    store = FlakyStore(SQLiteStateStore(tmp_path / "l.sqlite"))
    orch = Orchestrator(write_project(tmp_path), store, bus, alerts=MemorySink(), clock=clock)
    deliver(orch, RAW[:4])
    store.arm(t1="inside")
    with pytest.raises(InjectedCrash):
        orch.handle_completion(completion("r5", execution_id="e-r5"))
    assert store.get("orch_completions", f"raw->analytics|{DAY}|r5|e-r5") is None
    d = orch.handle_completion(completion("r5", execution_id="e-r5"))
    assert d.action == "triggered"  # not mistaken for a duplicate


def test_fm12_duplicate_path_never_overwrites_other_fields(make_orch, store):
    orch = make_orch()
    deliver(orch, RAW[:3], record_count=10)
    key = f"raw->analytics|{DAY}"
    before_ledger, before_rec = store.get("orch_ledger", key), store.get("orch_completions", f"{key}|r1|e-r1")
    d = orch.handle_completion(completion("r1", execution_id="e-r1", record_count=999, status="partial",
                                          metadata={"other": "field"}))
    assert d.action == "duplicate"
    assert store.get("orch_ledger", key) == before_ledger
    assert store.get("orch_completions", f"{key}|r1|e-r1") == before_rec


def test_fm13_lock_contention_does_not_leave_a_phase_stuck(tmp_path, bus, clock):
    from orch_support import write_project

    db = tmp_path / "l.sqlite"
    orch = Orchestrator(write_project(tmp_path), SQLiteStateStore(db, busy_timeout=0.02), bus, clock=clock,
                        alerts=MemorySink())
    deliver(orch, RAW[:3])
    blocker = sqlite3.connect(db, isolation_level=None, check_same_thread=False)
    blocker.execute("BEGIN IMMEDIATE")  # a "cold start" holding the lock
    release = threading.Timer(0.2, lambda: blocker.execute("COMMIT"))
    release.start()
    decisions = deliver(orch, RAW[3:])
    release.join()  # the COMMIT may still be returning in the timer's thread: closing under it crashed sqlite3
    assert decisions[-1].action == "triggered" and len(bus.published) == 1
    blocker.close()


def test_fm14_deadline_fires_without_a_new_message(make_orch, bus, alerts, clock):
    orch = make_orch({"deadline": "1h"})
    deliver(orch, ["r1", "r2", "r3"])
    assert orch.sweep(clock.t + 3599)[0].action == "waiting"
    (d,) = orch.sweep(clock.t + 3600)
    assert d.action == "triggered" and "deadline" in d.reason
    trig = bus.triggers()[0]
    assert trig["status"] == "partial" and trig["metadata"]["missing"] == ["r4", "r5"]
    assert any("deadline" in s for s in alerts.signatures())


def test_fm15_timestamps_come_from_the_clock_and_sentinels_are_rejected_before_commit(make_orch, store, clock):
    orch = make_orch()
    deliver(orch, ["r1"])
    led = store.get("orch_ledger", f"raw->analytics|{DAY}")
    assert led["rounds"]["1"]["first_at"] == clock.t
    sentinel = object()  # what a SERVER_TIMESTAMP-like placeholder would be
    with pytest.raises(BackendError, match="not plain JSON"):
        store.run_transaction(lambda txn: (txn.set("x", "a", {"ok": 1}), txn.set("x", "b", {"at": sentinel})))
    assert store.get("x", "a") is None  # nothing half-written


def test_fm16_hundreds_of_entity_ids_never_hit_document_limits(make_orch, bus, store):
    orch = make_orch()
    for i, n in enumerate(RAW):
        orch.handle_completion(completion(n, execution_id=f"e{i}", entities_changed={"player": [f"{n}_{k}" for k in range(460)]}))
    (trig,) = bus.triggers()
    assert trig["entities_changed"]["player"]["count"] == 2300
    conn = sqlite3.connect(store.path)
    sizes = [len(v) for (v,) in conn.execute("SELECT value FROM docs")]
    arrays = [len(a) for (v,) in conn.execute("SELECT value FROM docs") for a in _arrays(json.loads(v))]
    assert max(sizes) < 64_000 and max(arrays) <= 500


def _arrays(doc):
    if isinstance(doc, list):
        yield doc
        for x in doc:
            yield from _arrays(x)
    elif isinstance(doc, dict):
        for x in doc.values():
            yield from _arrays(x)


def test_fm17_serialization_problems_surface_when_the_envelope_is_built(make_orch):
    import datetime as dt
    import decimal

    env = make_envelope(processor_name="r1", phase="raw", partition=DAY, status="success",
                        record_count=decimal.Decimal(3), metadata={"loaded_at": dt.datetime(2026, 11, 28, 3)})
    assert make_orch().handle_completion(env).action == "recorded"
    with pytest.raises(EnvelopeError, match="metadata.bad"):  # before any data write by the runner
        make_envelope(processor_name="r1", phase="raw", partition=DAY, status="success", metadata={"bad": {1, object()}})


def test_fm22_blocking_quality_gate_reaches_the_caller_from_completion_and_sweep(make_orch, bus, clock):
    orch = make_orch({"quality_gates": [{"name": "rows", "processor": "r1"}], "rule": {"type": "tiered", "tiers": [
        {"after": 0, "min_complete": 5}, {"after": "1h", "min_complete": 3}]}}, gate_checker=lambda g, p: 0)
    deliver(orch, RAW[:3])
    with pytest.raises(QualityGateError):
        orch.sweep(clock.t + 3600)
    assert bus.published == []


def test_fm23_no_trigger_from_zero_upstream_rows(make_orch, bus):
    orch = make_orch({"quality_gates": [{"name": "upstream_rows", "processor": "r1", "min_rows": 1}]},
                     gate_checker=lambda gate, partition: 0)
    deliver(orch, RAW[:4])
    with pytest.raises(QualityGateError, match="0 row"):
        orch.handle_completion(completion("r5", execution_id="e-r5"))
    assert bus.published == [] and TriggerDedup(orch.store).first_time("anything")


def test_fm24_one_of_five_reported_is_loud_not_silent(make_orch, alerts, clock):
    orch = make_orch()  # no deadline: the stall alert is the backstop
    deliver(orch, ["r1"])
    (st,) = orch.status()
    assert st.missing == ["r2", "r3", "r4", "r5"] and "waiting for r2, r3, r4, r5" in st.reason
    orch.sweep(clock.t + 4 * 3600)
    assert [s for s in alerts.signatures() if "stalled" in s]
    orch.sweep(clock.t + 5 * 3600)
    assert len([s for s in alerts.signatures() if "stalled" in s]) == 1  # once per round, not a flood


def test_fm24_with_a_deadline_and_missing_critical_the_round_expires_loudly(make_orch, alerts, clock, bus):
    orch = make_orch({"deadline": "2h"})
    deliver(orch, ["r2"])  # critical r1 never reports
    (d,) = orch.sweep(clock.t + 7200)
    assert d.action == "expired" and bus.published == []
    assert any("deadline_expired" in s for s in alerts.signatures())
    assert orch.status()[0].verdict == "expired"


def test_fm22_a_gate_that_cannot_be_checked_blocks_loudly(make_orch, bus, alerts, clock):
    """The gate's row count fails (table missing, warehouse down): the trigger is held as a
    failed gate, alerted and shown in status; the sweep used to file it under
    'publish_failed' with no alert at all."""
    def broken(gate, partition):
        raise BackendError("table shop_raw.r1 does not exist")

    orch = make_orch({"quality_gates": [{"name": "upstream_rows", "processor": "r1", "min_rows": 1}]}, gate_checker=broken)
    deliver(orch, RAW[:4])
    with pytest.raises(QualityGateError, match="upstream_rows.*could not be checked.*shop_raw.r1 does not exist"):
        orch.handle_completion(completion("r5", execution_id="e-r5"))
    assert bus.published == []
    assert any("quality_gate" in s for s in alerts.signatures())
    assert orch.status()[0].verdict == "gate_failed"
    with pytest.raises(QualityGateError):
        orch.sweep(clock.t + 60)
