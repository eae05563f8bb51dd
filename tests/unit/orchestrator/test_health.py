"""`status --check` problems: a started partition that cannot finish on its own is named,
with the phase and processors a re-run must redo (framework.orchestrator.health)."""
from __future__ import annotations

from orch_support import DAY, completion  # noqa: F401 - fixtures below come from orch_support
from orch_support import alerts, bus, clock, make_orch, store  # noqa: F401
from framework.orchestrator.health import find_problems, owed_work

RAW = ["r1", "r2", "r3", "r4", "r5"]


def test_a_round_waiting_with_nothing_ahead_is_stalled_after_the_grace(make_orch, clock) -> None:
    orch = make_orch({"debounce": "0s"})
    for name in ("r1", "r2"):
        orch.handle_completion(completion(name, execution_id=f"e-{name}"))
    assert find_problems(orch, DAY, grace=900) == []  # just happened: not yet a problem
    # a new run of the partition knows no earlier run is still going: it re-dispatches them now
    assert [(p.kind, p.processors) for p in find_problems(orch, DAY, strict=True)] == [("stalled", ["r3", "r4", "r5"])]
    clock.advance(1000)
    (problem,) = find_problems(orch, DAY, grace=900)
    assert (problem.kind, problem.phase, problem.processors) == ("stalled", "raw", ["r3", "r4", "r5"])
    assert f"pipectl run --date {DAY}" in problem.recover
    assert owed_work([problem]) == {"raw": {"r3", "r4", "r5"}}
    assert find_problems(orch, DAY, grace=2000) == []


def test_a_failed_critical_processor_blocks_and_names_it(make_orch) -> None:
    orch = make_orch({"debounce": "0s"})
    orch.handle_completion(completion("r1", execution_id="e-r1", status="failed"))
    assert find_problems(orch, DAY, grace=0, strict=True)[0].kind == "blocked"
    (problem,) = find_problems(orch, DAY, grace=0)
    assert (problem.kind, problem.processors) == ("blocked", ["r1"])
    assert problem.recover == f"pipectl run --date {DAY} --from-phase raw"


def test_a_published_trigger_the_next_phase_never_answers_is_lost(make_orch, clock, bus) -> None:
    orch = make_orch({"debounce": "0s"})
    decisions = [orch.handle_completion(completion(n, execution_id=f"e-{n}")) for n in RAW]
    tid = decisions[-1].trigger_id
    assert decisions[-1].action == "triggered" and tid
    clock.advance(60)
    (problem,) = find_problems(orch, DAY, grace=30)
    assert (problem.kind, problem.transition, problem.phase) == ("lost_trigger", "raw->analytics", "analytics")
    assert problem.processors == ["a1", "a2", "a3"] and tid in problem.message
    assert find_problems(orch, DAY, grace=3600) == []  # the phase may still be running
    # the phase reports for the trigger: not lost any more
    orch.handle_completion(completion("a1", execution_id="e-a1", trigger_id=tid))
    assert [p.kind for p in find_problems(orch, DAY, grace=30)] == []
    assert find_problems(orch, "1999-01-01", grace=0) == []  # a partition that never started
