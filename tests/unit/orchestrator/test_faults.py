"""Fault injection: raise or kill at every step of the completion that fires a trigger.

Steps: before/inside the record transaction (before commit), after commit before publish,
after publish before mark, inside the mark transaction. Afterwards, with the redelivery a
bus performs for an unacknowledged message and/or a sweep, exactly one trigger id reaches
the consumer once dedup is applied, and none is lost.
"""
from __future__ import annotations

import multiprocessing as mp
import os

import pytest

from orch_support import DAY, RAW, FileBus, FlakyStore, InjectedCrash, completion, write_project
from framework.backends.sqlite_state import SQLiteStateStore
from framework.errors import BackendError
from framework.orchestrator import Orchestrator, TriggerDedup
from framework.alerts import MemorySink
from framework.orchestrator.ledger import trigger_id

GRACE = 30.0
STEPS = ["crash_before_record_txn", "crash_inside_record_txn", "publish_fails", "publish_sent_then_fails", "crash_inside_mark_txn"]


def delivered_once(store, ids):
    dedup = TriggerDedup(store)
    return [t for t in ids if dedup.first_time(t)]


def arm(step, flaky, bus):
    if step == "crash_before_record_txn":
        flaky.arm(t1="before")
    elif step == "crash_inside_record_txn":
        flaky.arm(t1="inside")
    elif step == "publish_fails":
        bus.fail_next = 1
    elif step == "publish_sent_then_fails":
        bus.fail_after_send = 1
    elif step == "crash_inside_mark_txn":
        flaky.arm(t2="inside")


@pytest.mark.parametrize("recovery", ["redelivery", "sweep"])
@pytest.mark.parametrize("step", STEPS)
def test_raise_at_every_step_loses_nothing_and_duplicates_nothing(tmp_path, bus, clock, step, recovery):
    project = write_project(tmp_path)
    inner = SQLiteStateStore(tmp_path / "ledger.sqlite")
    flaky = FlakyStore(inner)
    orch = Orchestrator(project, flaky, bus, alerts=MemorySink(), clock=clock, publish_grace=GRACE)
    msgs = [completion(n, execution_id=f"e-{n}") for n in RAW]
    for m in msgs[:-1]:
        orch.handle_completion(m)
    arm(step, flaky, bus)
    with pytest.raises((InjectedCrash, BackendError)):
        orch.handle_completion(msgs[-1])
    flaky.arm()
    clock.advance(GRACE + 1)  # the dead process's publish lease expires
    if recovery == "sweep":
        orch.sweep()
        if step not in ("crash_before_record_txn", "crash_inside_record_txn"):
            assert bus.trigger_ids(), "sweep alone must publish a committed trigger"
    orch.handle_completion(msgs[-1])  # the bus redelivers the unacknowledged message
    orch.sweep()
    expected = trigger_id(project.phase("raw").transition, DAY, 1)
    ids = bus.trigger_ids("analytics-trigger")
    assert set(ids) == {expected}
    assert delivered_once(inner, ids) == [expected]
    (st,) = orch.status(DAY)
    assert st.trigger_state == "published" and st.pending_triggers == []


# ---------------------------------------------------------------- kill -9 style (os._exit)
class _KillingStore(SQLiteStateStore):
    """Dies (os._exit) inside transaction number ``kill_at`` after its writes, before commit."""

    kill_at = 0
    count = 0

    def run_transaction(self, fn, max_attempts=10):
        self.count += 1
        if self.count == self.kill_at:
            def die(txn):
                fn(txn)
                os._exit(19)
            return super().run_transaction(die, max_attempts)
        return super().run_transaction(fn, max_attempts)


def _child(root, db, bus_path, point, msg):
    project = write_project(root)
    store = _KillingStore(db)
    bus = FileBus(bus_path)
    if point == "inside_record_txn":
        store.kill_at = 1
    elif point == "before_send":
        bus.exit_before_send = True
    elif point == "after_send":
        bus.exit_after_send = True
    elif point == "inside_mark_txn":
        store.kill_at = 2
    Orchestrator(project, store, bus, publish_grace=GRACE).handle_completion(msg)
    os._exit(0)


@pytest.mark.parametrize("point", ["inside_record_txn", "before_send", "after_send", "inside_mark_txn"])
def test_kill_at_every_step_then_redelivery_and_sweep_deliver_exactly_one(tmp_path, point):
    root = tmp_path / "p"
    root.mkdir()
    project = write_project(root)
    db, bus_path = tmp_path / "ledger.sqlite", tmp_path / "bus.jsonl"
    store = SQLiteStateStore(db)
    bus = FileBus(bus_path)
    import time as _time
    orch = Orchestrator(project, store, bus, publish_grace=GRACE)
    msgs = [completion(n, execution_id=f"e-{n}") for n in RAW]
    for m in msgs[:-1]:
        orch.handle_completion(m)
    proc = mp.get_context("fork").Process(target=_child, args=(root, str(db), bus_path, point, msgs[-1]))
    proc.start()
    proc.join(timeout=60)
    assert proc.exitcode in (17, 18, 19), f"child should have died at {point}, exit code {proc.exitcode}"
    later = Orchestrator(project, SQLiteStateStore(db), bus, publish_grace=GRACE, clock=lambda: _time.time() + GRACE + 1)
    later.handle_completion(msgs[-1])  # redelivery of the unacknowledged message
    later.sweep()
    expected = trigger_id(project.phase("raw").transition, DAY, 1)
    ids = bus.trigger_ids("analytics-trigger")
    assert set(ids) == {expected} and 1 <= len(ids) <= 2
    assert delivered_once(store, ids) == [expected]
    assert later.status(DAY)[0].trigger_state == "published"
