"""`pipectl status`: per transition and partition, what the orchestrator knows.

Failures must be visible, not only alerted: expected / completed / failed / missing
processors of the latest round, the verdict and its reason, and the trigger state
(pending triggers are the ones a crash or a failed publish left behind).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from framework.orchestrator import ledger as lg
from framework.orchestrator import policy

if TYPE_CHECKING:
    from framework.orchestrator.engine import Orchestrator


@dataclass(frozen=True)
class TransitionStatus:
    """The state of one transition for one partition, as `pipectl status` shows it."""

    transition: str
    partition: str
    mode: str
    round: int
    rounds: int
    state: str  # open | triggered | monitored
    verdict: str  # wait | fire | blocked | expired | gate_failed
    reason: str
    expected: list[str]
    completed: list[str]
    failed: list[str]
    missing: list[str]
    partial: list[str]
    trigger_id: str | None
    trigger_state: str | None  # pending | published | None
    first_completion_at: float | None
    next_check_at: float | None
    late: int = 0
    pending_triggers: list[str] = field(default_factory=list)
    history: list[dict[str, Any]] = field(default_factory=list)  # every round: number, state, verdict, trigger

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def collect(orch: "Orchestrator", partition: str | None = None) -> list[TransitionStatus]:
    where = {"partition": partition} if partition is not None else None
    order = {name: i for i, name in enumerate(orch.project.phase_names())}
    out: list[TransitionStatus] = []
    for _key, doc in orch.store.query(lg.LEDGER, where):
        transition = orch.transition(doc["transition"])
        if not doc["rounds"]:
            continue
        number = doc["open_round"] or doc["round"]
        rnd = doc["rounds"][str(number)]
        procs = rnd["processors"]
        view = lg.round_view(transition, rnd) if transition else None
        expected = sorted(view.expected) if view else sorted(rnd["expected"])
        completed = sorted(n for n, p in procs.items() if p["ok"])
        failed = sorted(n for n, p in procs.items() if not p["ok"])
        trig = orch.store.get(lg.TRIGGERS, rnd["trigger_id"]) if rnd["trigger_id"] else None
        wakes = [t for t in policy.wake_times(transition, view)] if transition and view and rnd["state"] == "open" else []
        out.append(TransitionStatus(
            transition=doc["transition"], partition=doc["partition"], mode=transition.mode if transition else "unknown",
            round=number, rounds=doc["round"], state=rnd["state"], verdict=rnd["verdict"], reason=rnd["reason"],
            expected=expected, completed=completed, failed=failed,
            missing=sorted(set(expected) - set(completed)),
            partial=sorted(n for n, p in procs.items() if p["status"] == "partial"),
            trigger_id=rnd["trigger_id"], trigger_state=trig["state"] if trig else None,
            first_completion_at=rnd["first_at"], next_check_at=wakes[0] if wakes else None,
            late=len(rnd["late"]), pending_triggers=sorted(doc["pending"]),
            history=[{"round": r["number"], "state": r["state"], "verdict": r["verdict"], "trigger_id": r["trigger_id"],
                      "completed": sum(1 for p in r["processors"].values() if p["ok"]), "late": len(r["late"]),
                      "opened_at": r["opened_at"], "reason": r["reason"]}
                     for _n, r in sorted(doc["rounds"].items(), key=lambda kv: int(kv[0]))],
        ))
    out.sort(key=lambda s: (s.partition, order.get(s.transition.split("->")[0], 99)))
    return out


def render_text(statuses: list[TransitionStatus]) -> str:
    """Human view for `pipectl status`."""
    if not statuses:
        return "no completions recorded"
    lines = []
    for s in statuses:
        trig = f"trigger {s.trigger_id} {s.trigger_state}" if s.trigger_id else "no trigger"
        lines.append(f"{s.partition}  {s.transition}  round {s.round}/{s.rounds}  {s.state} ({s.verdict})  {trig}")
        lines.append(f"    {len(s.completed)}/{len(s.expected)} complete; failed: {', '.join(s.failed) or '-'}; "
                     f"missing: {', '.join(s.missing) or '-'}")
        lines.append(f"    reason: {s.reason}")
        if s.pending_triggers:
            lines.append(f"    PENDING (not yet published): {', '.join(s.pending_triggers)}")
        if s.late:
            lines.append(f"    {s.late} late completion(s) after the trigger")
    return "\n".join(lines)
