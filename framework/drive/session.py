"""The library API behind ``pipectl run / simulate update / backfill / demo / history``.

A :class:`Session` opens the project, its target's backends (embedded by default: DuckDB,
local bus, SQLite ledger under ``.pipectl/``) and the alerts of ``pipectl.yaml``; the
functions below do one job each and return data for the CLI to print.

Sample data is the project's business: a project that ships
``pipelines/<project>/sample_data.py`` with ``generate(warehouse, start_date, days, seed)``
and ``apply_update(warehouse, game_date, entity_id, **changes)`` (or the latter in
``sample_edits.py``) gets ``pipectl demo`` and ``pipectl simulate update`` for free.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import json
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from framework.errors import ConfigError
from framework.manifest.model import Project
from framework.drive.hooks import SAMPLE_MODULES, sample_hook_modules, sample_module  # noqa: F401 - re-exported
from framework.drive.phase_run import run_processors
from framework.drive.pipeline import PipelineDriver, PipelineReport, Progress
from framework.drive.reports import PhaseReport

BACKFILLS = "pipectl_backfills"


@dataclass
class Session:
    """A project with its target's backends and alerts open, for the length of one command."""

    project: Project
    backends: Any
    alerts: Any
    _held: bool = False

    @classmethod
    def open(cls, project_root: str | Path = ".", target: str | None = None, aggregate_alerts: bool = False,
             clock: Callable[[], float] = time.time) -> "Session":
        from framework.backends.registry import open_backends, target_project
        from framework.project import load
        from framework.alerts import alerts_from_config, load_alerts_config

        from framework.alerts.alert_log import attach

        project = load(project_root)
        backends = open_backends(project.root, target)
        project = target_project(project.root, backends.target, project)  # the target's dataset/topic prefixes
        alerts = alerts_from_config(load_alerts_config(project.root), clock=clock, aggregate=aggregate_alerts)
        return cls(project, backends, attach(alerts, backends.state))

    def close(self) -> None:
        from framework.sql.rendered import flush_all

        self.alerts.flush(final=True)  # the process ends: report every suppressed alert now
        self.backends.close()
        flush_all()  # statements rendered by this command, for the next one

    def __enter__(self) -> "Session":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def warehouse(self) -> Any:
        wh = self.backends.warehouse
        if not self._held and hasattr(wh, "__enter__"):
            wh.__enter__()  # hold one DuckDB connection for the session: much faster than per query
            self._held = True
        return wh

    def driver(self, progress: Progress | None = None) -> PipelineDriver:
        drv = PipelineDriver(self.project, self.warehouse, self.backends.bus, self.backends.state,
                             alerts=self.alerts, progress=progress)
        drv.runner.lineage = self.lineage
        return drv

    @property
    def lineage(self) -> Any:
        """The target's OpenLineage emitter (pipectl.yaml ``lineage:``), made once, or None."""
        if not hasattr(self, "_lineage"):
            from framework.run.lineage import emitter_for

            self._lineage = emitter_for(self.project, self.backends.target)
        return self._lineage


def prepare(session: Session) -> None:
    """What `pipectl apply` would have done locally: bus topics/subscriptions and output
    tables exist (the pipeline driver does the same on start)."""
    from framework.drive.bus_setup import ensure_topology
    from framework.run.runner_io import ensure_tables

    ensure_topology(session.backends.bus, session.project)
    ensure_tables(session.warehouse, [p.output for p in session.project.processors.values() if p.output is not None])


# ------------------------------------------------------------------ sample data hooks
def generate_sample(session: Session, start: str, days: int = 1, seed: int = 42) -> dict[str, int]:
    return sample_module(session.project, "generate")(session.warehouse, start, days=days, seed=seed)


def reset_local_state(project_root: str | Path) -> Path:
    """Delete the embedded backends' folder ``.pipectl/`` (only ever that folder)."""
    from framework.config.paths import state_dir

    folder = state_dir(Path(project_root).resolve())
    if folder.exists():
        if folder.name != ".pipectl":
            raise ConfigError(f"refusing to delete {folder}: not a .pipectl folder")
        shutil.rmtree(folder)
    return folder


# ------------------------------------------------------------------ runs
def run_partition(session: Session, partition: str, *, select: Sequence[str] | None = None,
                  from_phase: str | None = None, entities: Sequence[str] | Mapping[str, Sequence[str]] | None = None,
                  full: bool = False, progress: Progress | None = None, changed: dict[str, list[str]] | None = None,
                  trigger_downstream: bool = True, mode: str | None = None,
                  sources_changed: Sequence[str] | None = None) -> PipelineReport:
    """Run one partition through the phases via the bus (``pipectl run --date``: a partition
    is a date for ``partition.type: DATE``, the default). ``entities`` replays ids per entity
    kind (``{"player": ["lebronjames"]}``, from ``framework.drive.replay.parse_entity_args``);
    a plain list means ids of the project's first declared kind. ``sources_changed``: the
    declared sources edited since the last run, when the caller knows (None: any)."""
    return session.driver(progress).run(partition, select=select, from_phase=from_phase, entities=entities, full=full,
                                        changed=changed, trigger_downstream=trigger_downstream, mode=mode,
                                        sources_changed=sources_changed)


@dataclass
class UpdateReport:
    """An incremental run after an edit, next to the last full batch of the same partition."""

    entity: str
    changes: dict[str, Any]
    report: PipelineReport
    baseline: dict[str, float] = field(default_factory=dict)  # phase -> full-batch seconds

    def rows(self) -> list[dict[str, Any]]:
        out = []
        for ph in self.report.phases:
            out.append({"phase": ph.phase, "entities": ph.entities_processed, "total": ph.entities_total,
                        "efficiency_pct": ph.efficiency_pct, "seconds": round(ph.seconds, 4),
                        "full_batch_seconds": self.baseline.get(ph.phase), "status": ph.status})
        return out

    def to_dict(self) -> dict[str, Any]:
        return {"entity": self.entity, "changes": self.changes, "phases": self.rows(), "pipeline": self.report.to_dict()}


def full_batch_baseline(session: Session, partition: str) -> dict[str, float]:
    """Seconds per phase of the latest full-batch run of every processor for ``partition``."""
    from framework.run.history import RunHistory

    latest: dict[str, Any] = {}
    for run in RunHistory(session.backends.state).list(partition=partition, limit=None):
        if run.full_batch and run.status in ("success", "partial") and run.processor not in latest:
            latest[run.processor] = run
    out: dict[str, float] = {}
    for run in latest.values():
        out[run.phase] = round(out.get(run.phase, 0.0) + float(run.duration_seconds or 0), 4)
    return out


Edit = tuple  # (table or None for the hook's default table, {column: value})


def apply_edits(session: Session, date: str, entity: Any, edits: Sequence[Edit]) -> dict[str, Any]:
    """Edit one entity's raw rows with the project's ``apply_update`` hook; ``edits`` is a
    list of ``(table or None, {column: value})``. ``entity`` is an
    :class:`~framework.drive.updates.EntityRef` (a bare id means the project's first kind).
    Returns what was set, ``table.column`` -> value."""
    from framework.drive.updates import EntityRef, call_apply_update, check_kind, update_defaults

    if not isinstance(entity, EntityRef):
        kind = _first_entity_kind(session.project)
        entity = EntityRef(kind or "", session.project.entity_kinds[kind].key if kind else "", str(entity))
    check_kind(update_defaults(session.project), entity)
    apply_update = sample_module(session.project, "apply_update")
    applied: dict[str, Any] = {}
    for tbl, cols in edits:
        try:
            call_apply_update(apply_update, session.warehouse, date, entity, tbl, dict(cols))
        except ValueError as exc:  # the hook's documented way to say "no such entity / column"
            raise ConfigError(f"the sample hook apply_update refused the edit of {entity}: {exc}",
                              hint="check the id, the date and the column names (`pipectl simulate update --help`)") from exc
        applied.update({f"{tbl}.{k}" if tbl else k: v for k, v in cols.items()})
    return applied


def simulate_update(session: Session, date: str, entity: Any, changes: dict[str, Any] | None = None,
                    progress: Progress | None = None, table: str | None = None,
                    edits: Sequence[Edit] | None = None) -> UpdateReport:
    """Edit one entity's raw rows (``edits``, else ``changes`` on ``table``) and run
    incrementally, next to the last full batch of the date."""
    from framework.drive.updates import EntityRef

    todo = list(edits) if edits else [(table, dict(changes or {}))]
    applied = apply_edits(session, date, entity, todo)
    hook = sample_module(session.project, "apply_update")
    sources = edited_sources(session.project, [tbl if tbl else default_update_table(hook) for tbl, _ in todo])
    baseline = full_batch_baseline(session, date)
    if isinstance(entity, EntityRef):
        changed = {entity.kind: [entity.id]}
    else:
        kind = _first_entity_kind(session.project)
        changed = {kind: [str(entity)]} if kind else None
    report = run_partition(session, date, progress=progress, changed=changed, mode="incremental",
                           sources_changed=sources)
    return UpdateReport(str(entity), applied, report, baseline)


def edited_sources(project: Project, tables: Sequence[str | None]) -> list[str] | None:
    """The declared sources behind edited landing tables (bare name, ``dataset.table`` or a
    source name); None when one is unknown: then no list is announced and every source is
    compared, as for an edit nobody reported."""
    out = []
    for table in tables:
        found = [name for name, src in project.sources.items()
                 if table in (name, src.table.name, src.table.fqn)] if table else []
        if len(found) != 1:
            return None
        out.append(found[0])
    return sorted(set(out))


def default_update_table(hook: Callable[..., Any]) -> str | None:
    """The landing table an ``apply_update`` hook edits when none is named (its own default)."""
    import inspect

    param = inspect.signature(hook).parameters.get("table")
    return param.default if param is not None and isinstance(param.default, str) else None


def _first_entity_kind(project: Project) -> str | None:
    return next(iter(project.entity_kinds), None)


# ------------------------------------------------------------------ backfill
@dataclass
class BackfillReport:
    """Progress of a resumable backfill: the dates asked for, done, failed."""

    backfill_id: str
    dates: list[str]
    done: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # already done before (resumed)
    failed: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0
    alerts_summaries: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {"backfill_id": self.backfill_id, "dates": len(self.dates), "done": len(self.done),
                "resumed_skipped": len(self.skipped), "failed": self.failed, "seconds": round(self.seconds, 3)}


def date_range(start: str, end: str) -> list[str]:
    a, b = dt.date.fromisoformat(start), dt.date.fromisoformat(end)
    if b < a:
        raise ConfigError(f"backfill: --to {end} is before --from {start}")
    return [(a + dt.timedelta(days=i)).isoformat() for i in range((b - a).days + 1)]


def backfill(session: Session, start: str, end: str, *, select: Sequence[str] | None = None,
             trigger_downstream: bool = False, full: bool = True, restart: bool = False,
             progress: Progress | None = None, stop_after: int | None = None) -> BackfillReport:
    """Process dates in order. Every finished date is checkpointed in the StateStore, so
    re-running the same command after a crash continues where it stopped. Without
    ``trigger_downstream`` the selected processors run directly and publish nothing, so no
    downstream phase is triggered; with it each date goes through the bus and orchestrator."""
    from framework.graph.graph import PipelineGraph
    from framework.run.runner import ProcessorRunner

    dates = date_range(start, end)
    names = PipelineGraph(session.project).select(select) if select else None
    # a disabled processor (`enabled: false`) is never run, selected or not: its table stays
    # as it is (its inputs may name it; pipectl keeps it existing and empty)
    procs = session.project.processors
    runnable = [n for n in (names if names is not None else procs) if procs[n].enabled]
    key = hashlib.sha1(json.dumps([start, end, sorted(names or []), trigger_downstream]).encode()).hexdigest()[:12]
    store = session.backends.state
    checkpoint = (store.get(BACKFILLS, key) or {}) if not restart else {}
    finished = set(checkpoint.get("done", []))
    rep = BackfillReport(key, dates)
    emit = progress or (lambda e, d: None)
    runner = ProcessorRunner(session.project, session.warehouse, session.backends.bus, store, alerts=session.alerts)
    prepare(session)
    t0 = time.perf_counter()
    for i, date in enumerate(dates):
        if date in finished:
            rep.skipped.append(date)
            emit("backfill_date", {"date": date, "index": i + 1, "total": len(dates), "status": "already done"})
            continue
        if trigger_downstream:
            first = _first_phase(session.project, names)
            report = run_partition(session, date, select=None, from_phase=first, full=full, progress=None, mode="backfill")
            results = [r for p in report.phases for r in p.runs]
            status = report.status
            errors = [r.error for r in results if r.error] + report.waiting
        else:
            results = run_processors(session.project, runner, date, runnable, mode="backfill", full=full, publish=False)
            status = "failed" if any(r.status == "failed" for r in results) else "success"
            errors = [f"{r.processor}: {r.error}" for r in results if r.status == "failed"]
        # a run skipped because another holds its claim (e.g. the run a crash left 'running')
        # did not process the date: never checkpoint it as done, or resuming would skip it
        not_run = [f"{r.processor}: skipped: {r.error}" for r in results if r.status == "skipped"]
        if not_run:
            status = "failed"
            errors = list(errors) + not_run
        if status == "failed":
            rep.failed[date] = "; ".join(e for e in errors if e)[:500] or "failed"
        else:
            rep.done.append(date)
            finished.add(date)
            _save_checkpoint(store, key, start, end, sorted(finished))
        emit("backfill_date", {"date": date, "index": i + 1, "total": len(dates), "status": status})
        if stop_after is not None and len(rep.done) >= stop_after:
            break
    rep.seconds = time.perf_counter() - t0
    rep.alerts_summaries = session.alerts.flush()
    return rep


def _first_phase(project: Project, names: Sequence[str] | None) -> str | None:
    if not names:
        return None
    order = {p.name: p.order for p in project.phases}
    return min((project.processors[n].phase for n in names), key=lambda ph: order[ph])


def _save_checkpoint(store: Any, key: str, start: str, end: str, done: list[str]) -> None:
    def txn(t: Any) -> None:
        t.set(BACKFILLS, key, {"from": start, "to": end, "done": done, "updated_at": time.time()})

    store.run_transaction(txn)


__all__ = ["Session", "run_partition", "simulate_update", "backfill", "generate_sample", "reset_local_state",
           "UpdateReport", "BackfillReport", "PhaseReport", "full_batch_baseline"]


def default_sample_date(project: Project) -> str:
    """The sample generator's first date (``DEFAULT_START``), else today."""
    try:
        gen = sample_module(project, "generate")
    except ConfigError:
        return dt.date.today().isoformat()
    start = getattr(sys.modules.get(gen.__module__), "DEFAULT_START", None)
    return start.isoformat() if hasattr(start, "isoformat") else str(start or dt.date.today().isoformat())
