"""Is a partition stuck? The problems `pipectl status --check` fails on, each with its fix.

Looking only at what the ledger says about each transition misses the worst cases: a phase
that received its trigger and never reported (the trigger was consumed and lost: a worker
crashed after acking, a command acked another partition's trigger), and a round that waits
for processors nothing will ever run. Both leave every ledger document looking calm. So a
partition that started is checked transition by transition:

* ``blocked`` / ``expired`` / ``gate_failed``: the open round's verdict (a critical
  processor failed, the deadline passed, a quality gate refused);
* ``pending_trigger``: a trigger committed but not yet published (`pipectl sweep` publishes it);
* ``lost_trigger``: a published trigger dispatched processors to the next phase, and that
  phase never reported for it (no completion carries its trigger id, and no later round of
  the next transition was opened) after ``grace`` seconds;
* ``stalled``: an open round of a transition without deadline waits for processors with no
  tier or debounce ahead to change its verdict, and nothing happened for ``grace`` seconds;
* ``sweep_due``: a deadline, tier or debounce boundary passed ``grace`` seconds ago and no
  sweep evaluated the round (the scheduler running `pipectl sweep` is missing).

Each problem names the phase and processors that must run again; ``pipectl run --date D``
re-dispatches exactly those (:func:`owed_work`), so a plain re-run heals the partition.
Pure reads of the ledger, completion and trigger documents.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from framework.orchestrator import ledger as lg
from framework.orchestrator import policy

if TYPE_CHECKING:
    from framework.orchestrator.engine import Orchestrator

DEFAULT_GRACE_SECONDS = 900.0


@dataclass(frozen=True)
class Problem:
    """One reason a partition cannot finish on its own, and the command that recovers it."""

    kind: str  # blocked | expired | gate_failed | pending_trigger | lost_trigger | stalled | sweep_due
    transition: str
    partition: str
    phase: str  # the phase whose processors must run again (or the transition's source phase)
    processors: list[str] = field(default_factory=list)
    message: str = ""
    recover: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def text(self) -> str:
        return f"{self.partition}  {self.transition}  {self.kind}: {self.message}; recover with `{self.recover}`"


def find_problems(orch: "Orchestrator", partition: str | None = None, now: float | None = None,
                  grace: float = DEFAULT_GRACE_SECONDS, strict: bool = False) -> list[Problem]:
    """Every problem of every started partition (or of ``partition``), in phase order.

    ``strict`` (what a new `pipectl run` of the partition uses, knowing no earlier run is
    still going): every open round still missing processors counts as stalled, whatever
    deadline or tier lies ahead, so the run re-dispatches them."""
    now = orch.clock() if now is None else now
    where = {"partition": partition} if partition is not None else None
    ledgers = {(doc["transition"], doc["partition"]): doc for _key, doc in orch.store.query(lg.LEDGER, where)}
    order = {name: i for i, name in enumerate(orch.project.phase_names())}
    out: list[Problem] = []
    for (name, part), doc in sorted(ledgers.items(), key=lambda kv: (kv[0][1], order.get(kv[1]["phase"], 99))):
        transition = orch.transition(name)
        if transition is None or not doc["rounds"]:
            continue
        run = f"pipectl run --date {part}"
        for tid in sorted(doc["pending"]):
            out.append(Problem("pending_trigger", name, part, transition.source_phase, [],
                               f"trigger {tid} was committed but not published", "pipectl sweep"))
        number = doc["open_round"]
        if number is not None:
            out += _open_round_problems(orch, transition, doc["rounds"][str(number)], part, now, grace, run, strict)
        out += _lost_triggers(orch, transition, doc, ledgers, part, now, grace, run)
    return out


def _open_round_problems(orch: "Orchestrator", transition: Any, rnd: dict[str, Any], part: str, now: float,
                         grace: float, run: str, strict: bool = False) -> list[Problem]:
    view = lg.round_view(transition, rnd)
    source = transition.source_phase
    failed = sorted(view.failed - view.completed)
    missing = sorted(view.expected - view.completed)
    verdict = rnd["verdict"]
    name = transition.name
    if verdict in ("blocked", "expired", "gate_failed"):
        redo = failed or missing
        return [Problem(verdict, name, part, source, redo, f"round {rnd['number']}: {rnd['reason']}",
                        f"{run} --from-phase {source}" if verdict != "gate_failed"
                        else f"fix the upstream rows, then {run} --from-phase {source}")]
    if verdict != "wait" or not missing:
        return []
    wakes = policy.wake_times(transition, view)
    if strict:
        wakes, grace = [], 0.0
    elif any(t > now for t in wakes):
        return []  # a debounce, tier or deadline ahead will settle it
    if wakes and now - max(wakes) >= grace:
        return [Problem("sweep_due", name, part, source, [],
                        f"round {rnd['number']}: its deadline/tier/debounce passed {int(now - max(wakes))}s ago and no "
                        f"sweep has evaluated it ({rnd['reason']})", "pipectl sweep  (schedule it every minute)")]
    if transition.deadline_seconds is not None and not strict:
        return []  # the deadline settles it (fires or expires: then it is a problem)
    last = max([p.get("at") or 0.0 for p in rnd["processors"].values()] + [rnd.get("first_at") or 0.0, rnd["opened_at"]])
    if now - last < grace:
        return []
    return [Problem("stalled", name, part, source, missing,
                    f"round {rnd['number']} has waited {int(now - last)}s for {', '.join(missing)} with no deadline "
                    f"or tier ahead ({rnd['reason']})", f"{run}  (re-runs {', '.join(missing)})")]


def _lost_triggers(orch: "Orchestrator", transition: Any, doc: dict[str, Any], ledgers: dict, part: str,
                   now: float, grace: float, run: str) -> list[Problem]:
    """Published triggers whose target phase never reported (see the module docstring)."""
    target = transition.target_phase
    nxt = orch.project.phase(target).transition if target else None
    if nxt is None:
        return []  # the target phase reports to nobody: nothing to check its completion against
    downstream = ledgers.get((nxt.name, part))
    out = []
    for _n, rnd in sorted(doc["rounds"].items(), key=lambda kv: int(kv[0])):
        tid = rnd.get("trigger_id")
        if rnd["state"] != "triggered" or not tid:
            continue
        trig = orch.store.get(lg.TRIGGERS, tid)
        if trig is None or trig["state"] != "published" or not trig.get("dispatched"):
            continue
        published = float(trig.get("published_at") or trig["created_at"])
        if downstream is not None:
            if f"t:{tid}" in downstream["run_keys"]:
                continue  # the phase reported for this trigger
            if any(float(r["opened_at"]) >= published for r in downstream["rounds"].values()):
                continue  # a later run of the phase superseded it
        if now - published < grace:
            continue
        out.append(Problem("lost_trigger", transition.name, part, target, sorted(trig["dispatched"]),
                           f"trigger {tid} (round {trig['round']}) dispatched {len(trig['dispatched'])} processor(s) to "
                           f"phase {target} {int(now - published)}s ago and the phase never reported "
                           f"(the trigger was consumed and lost)", f"{run}  (re-dispatches phase {target})"))
    return out


def owed_work(problems: list[Problem]) -> dict[str, set[str]]:
    """Per phase, the processors a re-run must run again (what the problems left undone)."""
    out: dict[str, set[str]] = {}
    for p in problems:
        if p.kind in ("lost_trigger", "stalled", "blocked", "expired") and p.processors:
            out.setdefault(p.phase, set()).update(p.processors)
    return out


def render_problems(problems: list[Problem]) -> str:
    if not problems:
        return "check: ok (no stuck, stalled, blocked or lost transitions)"
    return "\n".join([f"check: {len(problems)} problem(s)"] + [f"  {p.text()}" for p in problems])


__all__ = ["Problem", "find_problems", "owed_work", "render_problems", "DEFAULT_GRACE_SECONDS"]
