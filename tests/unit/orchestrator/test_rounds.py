"""Rounds: the overnight full batch, then small updates for the same partition."""
from __future__ import annotations

from orch_support import DAY, RAW, completion
from framework.orchestrator.ledger import trigger_id


def full_raw_round(orch, corr="night"):
    return [orch.handle_completion(completion(n, execution_id=f"{corr}-{n}", correlation_id=corr, entities_changed=None))
            for n in RAW][-1]


def test_full_round_through_two_transitions(make_orch, bus):
    orch = make_orch()
    d = full_raw_round(orch)
    assert d.action == "triggered" and d.round == 1
    (t1,) = bus.triggers("analytics-trigger")
    assert t1["metadata"]["expected"] == ["a1", "a2", "a3"] and t1["entities_changed"] is None
    for n in ["a1", "a2", "a3"]:
        d = orch.handle_completion(completion(n, execution_id=f"an-{n}", trigger_id=t1["trigger_id"], correlation_id="night",
                                              entities_changed={"player": [n]}))
    assert d.action == "triggered"
    (t2,) = bus.triggers("precompute-trigger")
    assert t2["round"] == 1 and t2["parent_correlation_id"] == "night"
    assert t2["metadata"]["expected"] == ["c1"]


def test_one_processor_update_round(make_orch, bus, clock):
    orch = make_orch()
    full_raw_round(orch)
    clock.advance(6 * 3600)  # 2 PM injury update: one raw processor, one player
    d = orch.handle_completion(completion("r3", execution_id="upd-r3", correlation_id="injury-1400",
                                          entities_changed={"player": ["lebron_james"]}))
    assert d.action == "recorded" and d.round == 2 and "debounce" in d.reason
    assert orch.sweep(clock.t + 119)[0].action == "waiting"  # window still open
    (swept,) = orch.sweep(clock.t + 120)
    assert swept.action == "triggered" and swept.round == 2
    assert swept.trigger_id == trigger_id(orch.transition("raw->analytics"), DAY, 2)
    t2 = bus.triggers("analytics-trigger")[-1]
    assert t2["entities_changed"] == {"player": ["lebron_james"]} and t2["round"] == 2
    assert t2["metadata"]["expected"] == ["a2"]  # only what is downstream of r3
    assert t2["parent_correlation_id"] == "injury-1400"
    # analytics round 2 expects exactly what was dispatched: a2 alone fires it
    d = orch.handle_completion(completion("a2", execution_id="upd-a2", correlation_id="injury-1400",
                                          trigger_id=t2["trigger_id"], entities_changed={"player": ["lebron_james"]}))
    assert d.action == "triggered" and d.round == 1  # first round of the analytics ledger
    t3 = bus.triggers("precompute-trigger")[-1]
    assert t3["entities_changed"] == {"player": ["lebron_james"]} and t3["metadata"]["expected"] == ["c1"]


def test_late_duplicate_never_opens_a_new_round(make_orch, bus, clock, alerts):
    orch = make_orch()
    full_raw_round(orch)
    clock.advance(3600)
    dup = orch.handle_completion(completion("r1", execution_id="night-r1", correlation_id="night", entities_changed=None))
    assert dup.action == "duplicate" and dup.round == 1
    late = orch.handle_completion(completion("r2", execution_id="night-r2-retry", correlation_id="night", status="no_data"))
    assert late.action == "late" and late.round == 1
    assert any("late_completion" in s for s in alerts.signatures())
    clock.advance(3600)
    assert [d.action for d in orch.sweep()] == []  # nothing open, nothing pending
    (st,) = orch.status(DAY)[:1]
    assert st.rounds == 1 and st.late == 1 and len(bus.published) == 1


def test_two_overlapping_updates_share_one_round_then_a_third_opens_the_next(make_orch, bus, clock):
    orch = make_orch()
    full_raw_round(orch)
    clock.advance(3600)
    a = orch.handle_completion(completion("r3", execution_id="ua", correlation_id="upd-a", entities_changed={"player": ["x"]}))
    clock.advance(30)
    b = orch.handle_completion(completion("r4", execution_id="ub", correlation_id="upd-b", entities_changed={"player": ["y"]}))
    assert a.round == b.round == 2
    clock.advance(120)
    (d,) = orch.sweep()
    assert d.action == "triggered" and d.round == 2
    t = bus.triggers("analytics-trigger")[-1]
    assert t["entities_changed"] == {"player": ["x", "y"]} and t["metadata"]["expected"] == ["a2", "a3"]
    c = orch.handle_completion(completion("r1", execution_id="uc", correlation_id="upd-c", entities_changed={"player": ["z"]}))
    assert c.round == 3
    clock.advance(120)
    orch.sweep()
    t3 = bus.triggers("analytics-trigger")[-1]
    assert t3["round"] == 3 and t3["entities_changed"] == {"player": ["z"]} and t3["metadata"]["expected"] == ["a1"]
    assert len(set(bus.trigger_ids())) == len(bus.trigger_ids()) == 3


def test_update_before_the_first_round_fired_joins_it(make_orch, bus):
    orch = make_orch()
    for n in RAW[:3]:
        orch.handle_completion(completion(n, execution_id=f"n-{n}", correlation_id="night", entities_changed={"player": ["a"]}))
    orch.handle_completion(completion("r1", execution_id="u-r1", correlation_id="upd", entities_changed={"player": ["b"]}))
    for n in RAW[3:]:
        d = orch.handle_completion(completion(n, execution_id=f"n-{n}", correlation_id="night", entities_changed={"player": ["a"]}))
    assert d.action == "triggered" and d.round == 1
    assert bus.triggers()[0]["entities_changed"] == {"player": ["a", "b"]}


def test_update_round_with_no_changes_dispatches_nothing(make_orch, bus, clock):
    orch = make_orch()
    full_raw_round(orch)
    clock.advance(3600)
    orch.handle_completion(completion("r2", execution_id="u", correlation_id="upd", status="no_data"))
    (d,) = orch.sweep(clock.t + 120)
    assert d.action == "triggered"
    t = bus.triggers()[-1]
    assert t["entities_changed"] == {} and t["metadata"]["expected"] == []


def test_late_run_with_changes_after_its_round_fired_goes_out_in_a_new_round(make_orch, bus, clock, alerts):
    orch = make_orch({"rule": {"type": "tiered", "tiers": [{"after": 0, "min_complete": 5}, {"after": "1h", "min_complete": 4}]}})
    for n in RAW[:4]:
        orch.handle_completion(completion(n, execution_id=f"n-{n}", correlation_id="night", entities_changed={"player": ["a"]}))
    (fired,) = orch.sweep(clock.t + 3600)
    assert fired.action == "triggered" and fired.round == 1
    clock.advance(3700)
    d = orch.handle_completion(completion("r5", execution_id="n-r5", correlation_id="night", entities_changed={"player": ["late"]}))
    assert d.action == "recorded" and d.round == 2
    assert any("late_completion" in s for s in alerts.signatures())
    (d2,) = orch.sweep(clock.t + 120)
    assert d2.action == "triggered" and d2.round == 2
    t2 = bus.triggers()[-1]
    assert t2["entities_changed"] == {"player": ["late"]} and t2["metadata"]["expected"] == ["a3"]


def test_status_history_lists_every_round(make_orch, clock):
    orch = make_orch()
    full_raw_round(orch)
    clock.advance(3600)
    orch.handle_completion(completion("r3", execution_id="u", correlation_id="upd", entities_changed={"player": ["x"]}))
    (st,) = orch.status(DAY)
    assert st.round == 2 and st.rounds == 2 and st.state == "open"
    assert [(h["round"], h["state"]) for h in st.history] == [(1, "triggered"), (2, "open")]
    assert st.history[0]["trigger_id"] == trigger_id(orch.transition("raw->analytics"), DAY, 1)
