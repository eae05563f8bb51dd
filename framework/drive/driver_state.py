"""When is a partition's run over, and what is it still waiting for?

Kept apart from :mod:`framework.drive.pipeline` (which pumps the bus) because every
"waits forever" bug of the driver lived here: a phase whose round had nothing to run
published no completion, so the driver waited for the phases after it although nothing
could ever reach them. The rules, in one place:

* a phase is *done* for this run when its processors ran for one of this run's triggers,
  or when its trigger dispatched nothing to run (the upstream round changed nothing it
  reads): then no later phase can receive anything from this run either, so they are done
  too, "unchanged" (:func:`mark_unchanged`);
* the run is over when every phase is done, the bus is idle and no round of *this*
  partition is still open with a policy boundary ahead (a debounce window, a tier);
* what is left is reported per phase, with the orchestrator's reason for *this* partition
  only (:func:`waiting`); the fast-forward sweep also looks at this partition only, so
  another partition's blocked gate never shows up under this run's ``waiting:``.
"""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from framework.errors import QualityGateError
from framework.manifest.model import Project

if TYPE_CHECKING:
    from framework.drive.pipeline import PipelineDriver
    from framework.drive.reports import PipelineReport

log = logging.getLogger(__name__)


@dataclass
class RunContext:
    """One ``pipectl run`` of one partition, as the driver's loop sees it."""

    partition: str
    selected: set[str] | None
    phases: list[str]
    replay: Any  # framework.drive.replay.ReplayPlan | None
    full: bool
    mode: str
    trigger_downstream: bool
    done_phases: set[str] = field(default_factory=set)
    blocked: list[str] = field(default_factory=list)
    published_at: dict[str, float] = field(default_factory=dict)
    last_completion_at: dict[str, float] = field(default_factory=dict)
    # per phase, processors an earlier run left undone (a lost trigger, a stalled or blocked
    # round: framework.orchestrator.health): this run re-dispatches them
    owed: dict[str, set[str]] = field(default_factory=dict)
    # a trigger of this run named the landing sources that changed (metadata.sources_changed):
    # processors reading other sources may be skipped (framework.run.input_versions)
    sources_announced: bool = False


def prev_phase(project: Project, phase: str) -> str | None:
    names = project.phase_names()
    idx = names.index(phase)
    return names[idx - 1] if idx > 0 else None


def mark_unchanged(ctx: RunContext, report: "PipelineReport", phase: str, note: str, until: str | None = None) -> None:
    """``phase`` had nothing to run for this run: it and every later phase of the run (up to
    ``until``, a phase that still has work: code changed there) are done, each with a report
    saying why nothing ran (an honest summary, not a wait)."""
    from framework.drive.reports import PhaseReport

    names = ctx.phases
    start = names.index(phase) if phase in names else len(names)
    stop = names.index(until) if until in names else len(names)
    for i, name in enumerate(names[start:stop]):
        if name in ctx.done_phases and i > 0:
            continue
        ctx.done_phases.add(name)
        rep = report.phase(name)
        if rep is None:
            rep = PhaseReport(name)
            report.phases.append(rep)
        if not rep.runs and rep.note is None:
            rep.note = note if i == 0 else f"nothing changed upstream ({phase} had nothing to run)"


def finished(ctx: RunContext) -> bool:
    return all(p in ctx.done_phases for p in ctx.phases)


def open_rounds(driver: "PipelineDriver", ctx: RunContext) -> bool:
    """A round of this partition is still open with a policy boundary ahead (e.g. a
    completion that arrived after its transition fired): settle it now rather than leave
    it to the next command."""
    names = set(ctx.phases)
    return any(getattr(st, "state", "") == "open" and getattr(st, "next_check_at", None)
               and st.transition.split("->")[0] in names for st in driver.orchestrator.status(ctx.partition))


def fast_forward(driver: "PipelineDriver", ctx: RunContext) -> float:
    """Move the clock to the orchestrator's next check (debounce end, tier boundary,
    deadline) of this partition, then sweep it, as the scheduler would."""
    now = driver.clock()
    nexts = [st.next_check_at for st in driver.orchestrator.status(ctx.partition)
             if getattr(st, "next_check_at", None) and st.next_check_at > now]
    if nexts:
        step = min(nexts) - now + 0.5
    else:
        step = 1.0 + max([t.debounce_seconds for t in driver.project.transitions()] + [0])
    driver.clock.advance(step)
    try:
        driver.orchestrator.sweep(partition=ctx.partition)
    except QualityGateError as exc:  # still blocked: recorded and alerted by the orchestrator
        ctx.blocked.append(exc.render())
    return step


def envelope_partition(data: bytes | str) -> str | None:
    """The partition a message is about (None if it cannot be read: the handler says why)."""
    try:
        env = json.loads(data)
    except ValueError:
        return None
    if not isinstance(env, dict):
        return None
    value = env.get("partition", env.get("game_date"))
    return None if value is None else str(value)


def waiting(driver: "PipelineDriver", ctx: RunContext) -> list[str]:
    """Phases of this run that never ran, each with the orchestrator's reason and the
    command that recovers it."""
    missing = [p for p in ctx.phases if p not in ctx.done_phases]
    out = []
    for phase in missing:
        prev = prev_phase(driver.project, phase)
        reason = ""
        try:
            for st in driver.orchestrator.status(ctx.partition):
                if getattr(st, "transition", None) == f"{prev}->{phase}":
                    reason = (f"{st.state}/{st.verdict}: {st.reason}; failed {st.failed or '-'}, "
                              f"missing {st.missing or '-'}")
        except Exception as exc:  # noqa: BLE001 - status is diagnostic only; say why it is missing
            reason = f"(status unavailable: {exc})"
        out.append(f"phase {phase} never triggered (transition {prev}->{phase}): {reason}; "
                   f"recover with `pipectl run --date {ctx.partition} --from-phase {phase}`")
    return out
