"""What the phase worker does with one trigger: which processors run, in which order, on
which entities, and what the phase's report records.

Kept apart from :mod:`framework.drive.pipeline` (which pumps the bus, publishes triggers and
hands completions to the orchestrator) because the two change for different reasons: this
is the dispatch rule of one round (the orchestrator's list, plus processors whose code
changed or that an earlier run left undone, plus their same-phase downstream; a replay's
entities; ``--select``; ``--full``), the driver is the loop around it. Functions take the
driver (:class:`~framework.drive.pipeline.PipelineDriver`) as :mod:`framework.drive.driver_state`'s do.
:func:`run_processors` is the same work without the bus (a backfill without downstream triggers).
"""
from __future__ import annotations

import time
import uuid
from typing import TYPE_CHECKING, Any, Iterable, Sequence

from framework.drive.driver_state import RunContext, mark_unchanged, prev_phase
from framework.drive.reports import PhaseReport, PipelineReport, brief as _brief
from framework.graph.graph import PipelineGraph
from framework.manifest.model import Project
from framework.run.runner import ProcessorRunner, RunRequest, RunResult

if TYPE_CHECKING:
    from framework.drive.pipeline import PipelineDriver


def run_phase(drv: PipelineDriver, phase: str, env: dict[str, Any], ctx: RunContext, report: PipelineReport) -> None:
    corr = env.get("root_correlation_id") or env.get("correlation_id") or report.correlation_id
    own = corr == report.correlation_id
    if own:
        rep = report.phase(phase) or PhaseReport(phase)
        if report.phase(phase) is None:
            report.phases.append(rep)
    else:
        rep = PhaseReport(phase)
        report.other_rounds.append(rep)
    rep.trigger_id = env.get("trigger_id")
    last_completion = ctx.last_completion_at.get(prev_phase(drv.project, phase))
    if last_completion is not None:
        rep.trigger_latency_seconds = round(max(0.0, time.time() - last_completion), 6)
    procs = [p.name for p in drv.project.processors_in(phase)]
    _announce_sources(drv, env, ctx)
    dispatched = (env.get("metadata") or {}).get("expected")
    # --full means every entity of every selected processor in every phase and round of
    # this run: the orchestrator's dispatch list (processors downstream of a change) is
    # ignored then, like a replay's
    forced_full = ctx.full and own
    if env.get("kind") == "trigger" and isinstance(dispatched, list) and ctx.replay is None and not forced_full:
        # the orchestrator's round: what it dispatched, plus every processor whose code
        # changed since it last ran this partition (it reprocesses all its entities)
        extra = _within_phase(drv, procs, set(_code_changed(drv, procs, ctx.partition)) | ctx.owed.pop(phase, set()))
        procs = [p for p in procs if p in set(dispatched) or p in extra]
    dispatched_names = list(procs)
    if ctx.selected is not None:
        procs = [p for p in procs if p in ctx.selected]
    order = drv.graph.topological_order(procs)
    drv.progress("phase_start", {"phase": phase, "processors": order, "trigger_id": rep.trigger_id})
    if not dispatched_names:
        # the upstream round changed nothing this phase reads: the phase is done, and so
        # is every later one of this run (nothing can reach them), not "waiting"
        if own:
            later = _next_with_work(drv, ctx, phase)
            mark_unchanged(ctx, report, phase, "nothing to run: no input of this phase changed",
                           until=later[0] if later else None)
            if later:  # a later phase has work (code changed, or left undone): the run goes on there
                drv.publish_start(later[0], ctx, corr, None, expected=later[1])
        drv.progress("phase_done", rep.to_dict())
        return
    t0, c0 = time.perf_counter(), time.process_time()
    if ctx.selected is not None:
        for name in dispatched_names:
            if name not in ctx.selected:
                drv.runner.report_not_run(name, ctx.partition, corr, env, "not selected (--select)",
                                           round_processors=dispatched_names)
    for name in order:
        with drv.runner.lock:
            target = ctx.replay.for_processor(drv.warehouse, drv.project.processors[name], ctx.partition) if ctx.replay else None
        if target is not None and target.skip_reason:  # never silently: reported, and counted by the orchestrator
            res = drv.runner.report_not_run(name, ctx.partition, corr, env, target.skip_reason,
                                             round_processors=dispatched_names)
            rep.runs.append(res)
            report.notes.append(f"{name} [{phase}]: {target.skip_reason}")
            drv.progress("processor_done", {"phase": phase, **_brief(res)})
            continue
        req = RunRequest(name, ctx.partition, entities=target.ids if target else None,
                         reason=target.note if target else None, full=forced_full, correlation_id=corr,
                         parent_id=env.get("execution_id"), trigger_id=env.get("trigger_id"), mode=ctx.mode,
                         publish=True, round_processors=dispatched_names,
                         trust_versions=ctx.mode == "incremental" and not forced_full and target is None,
                         sources_announced=ctx.sources_announced)
        res = drv.runner.run(req)
        if ctx.replay is not None:
            ctx.replay.rewritten(name)  # kinds mapped through its table map again
        rep.runs.append(res)
        drv.progress("processor_done", {"phase": phase, **_brief(res)})
    rep.seconds += time.perf_counter() - t0
    rep.cpu_seconds += time.process_time() - c0
    if own:
        ctx.done_phases.add(phase)
        ctx.last_completion_at[phase] = time.time()
    drv.progress("phase_done", rep.to_dict())

def _announce_sources(drv: PipelineDriver, env: dict[str, Any], ctx: RunContext) -> None:
    """A trigger naming the landing sources it changed bumps their versions; names that
    are not declared sources make the run trust no list (every source is compared)."""
    if drv.runner.versions is not None and drv.runner.versions.announce_trigger(env, ctx.partition):
        ctx.sources_announced = True

def _next_with_work(drv: PipelineDriver, ctx: RunContext, phase: str) -> tuple[str, list[str]] | None:
    """The first phase after ``phase`` of this run with (selected) processors whose code
    changed since they last ran the partition, or that an earlier run left undone."""
    for name in ctx.phases[ctx.phases.index(phase) + 1:] if phase in ctx.phases else []:
        procs = [p.name for p in drv.project.processors_in(name)
                 if ctx.selected is None or p.name in ctx.selected]
        todo = set(_code_changed(drv, procs, ctx.partition)) | (ctx.owed.pop(name, set()) & set(procs))
        if todo:
            return name, sorted(_within_phase(drv, procs, todo))
    return None

def _within_phase(drv: PipelineDriver, phase_procs: Sequence[str], names: set[str]) -> set[str]:
    """``names`` and their downstream processors of the same phase: a processor that reads
    a re-run processor of its own phase must see its new rows (the orchestrator's
    dispatch covers the later phases)."""
    out = set(names)
    for name in names:
        out |= drv.graph.downstream(name) & set(phase_procs)
    return out

def owed(drv: PipelineDriver, ctx: RunContext, report: PipelineReport) -> None:
    """What earlier runs of this partition left undone (a trigger consumed and lost, a
    stalled or blocked round): this run re-dispatches it, so a plain re-run heals."""
    from framework.orchestrator.health import find_problems, owed_work

    problems = find_problems(drv.orchestrator, ctx.partition, grace=0.0, strict=True)
    ctx.owed = {ph: names for ph, names in owed_work(problems).items() if ph in ctx.phases[1:]}
    for p in problems:
        if p.phase in ctx.owed:
            report.notes.append(f"re-dispatching {', '.join(p.processors)} in phase {p.phase}: {p.kind} ({p.message})")

def _code_changed(drv: PipelineDriver, names: Sequence[str], partition: str) -> list[str]:
    """Processors that must reprocess the partition whatever the trigger says: their code
    changed, or their output table was found missing since they ran it."""
    state = drv.runner.code_state
    return [n for n in names if drv.runner.missing_output(drv.project.processors[n], partition)
            or (state is not None and state.changed_reason(drv.project.processors[n], partition))]


def run_processors(project: Project, runner: ProcessorRunner, partition: str, names: Iterable[str], *,
                   mode: str = "backfill", full: bool = False, publish: bool = False,
                   correlation_id: str | None = None) -> list[RunResult]:
    """Run processors directly in topological order (backfill without downstream triggers)."""
    graph = PipelineGraph(project)
    corr = correlation_id or uuid.uuid4().hex[:16]
    return [runner.run(RunRequest(n, partition, full=full, correlation_id=corr, mode=mode, publish=publish))
            for n in graph.topological_order(list(names))]
