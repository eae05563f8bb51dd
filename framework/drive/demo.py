"""``pipectl demo``: the README's first command, end to end on the embedded backends.

0. check everything it needs (embedded target, the project loads, the sample-data hooks
   ``generate`` and ``apply_update`` exist) before it touches anything;
1. reset the project's local state (``.pipectl/``: warehouse, bus, ledger);
2. generate one deterministic sample game day (the project's ``sample_data.generate``);
3. run the full game day through every phase (bus + orchestrator, full batch);
4. the "2 PM update": one entity's raw rows change (``apply_update``, with the edits and
   the entity of the project's ``UPDATE_DEFAULTS``: in the NBA example a player's stat
   correction and his points line moving), and the pipeline runs incrementally: every phase
   processes that one entity (and what maps from it), printed next to the full-batch time
   of the same phase.

Only the embedded target is allowed: the demo deletes local state before it starts. Which
folder the demo may run in (an example copy it made, or a user's project after a yes) is
decided by :mod:`framework.drive.demo_place`.
"""
from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from framework.errors import ConfigError
from framework.drive.pipeline import PipelineReport, Progress

EMBEDDED = {"warehouse": "duckdb", "bus": "local", "state": "sqlite"}


@dataclass
class DemoOutcome:
    date: str
    full: PipelineReport
    update: Any = None  # session.UpdateReport
    entity: Any = None  # the updated entity (updates.EntityRef)
    notes: list[str] = field(default_factory=list)

    @property
    def failed(self) -> bool:
        return self.full.status == "failed" or self.update is None or self.update.report.status == "failed"

    def to_dict(self) -> dict[str, Any]:
        ref = self.entity
        return {"date": self.date, "entity": str(ref) if ref else None, "entity_kind": ref.kind if ref else None,
                "entity_id": ref.id if ref else None, "full": self.full.to_dict(),
                "update": self.update.to_dict() if self.update else None, "notes": self.notes}


def check_demo(project_root: str | Path = ".", target: str | None = None) -> None:
    """Raise unless the demo can run in ``project_root``; reads, never writes."""
    from framework.config import resolve_target
    from framework.project import load
    from framework.drive import session as s

    chosen = resolve_target(project_root, target)
    for role, kind in EMBEDDED.items():
        if chosen.spec(role).type != kind:
            raise ConfigError(f"pipectl demo resets local state and runs only on embedded backends; target "
                              f"'{chosen.name}' uses {role} type '{chosen.spec(role).type}'", hint="run it without --target")
    from framework.drive.updates import update_defaults

    project = load(project_root)
    for hook in ("generate", "apply_update"):
        s.sample_module(project, hook)  # raises, naming where it looked
    defaults = update_defaults(project)
    if defaults.entity is None or not defaults.edits():
        raise ConfigError(f"pipectl demo needs the project's UPDATE_DEFAULTS (the entity and columns of its update); "
                          f"project '{project.name}' declares none",
                          hint="run `pipectl demo` in an empty folder (it makes ./pipectl-demo/); on your own project "
                               "use `pipectl sample`, `pipectl run` and `pipectl simulate update`, or declare "
                               "UPDATE_DEFAULTS beside the sample hooks (docs/runtime.md#sample-data-hooks)")
    tables = {p.output.name for p in project.processors.values() if p.output is not None}
    tables |= {src.table.name for src in project.sources.values()}
    missing = sorted({t for t, _ in defaults.edits() if t} - tables)
    if missing:
        raise ConfigError(f"{defaults.where}: demo_edits name table(s) {', '.join(missing)} that project "
                          f"'{project.name}' does not declare", hint="name a source or output table of processors.yaml")


def run_demo(project_root: str | Path = ".", target: str | None = None, *, date: str | None = None,
             entity: Any = None, progress: Progress | None = None,
             say: Callable[[Any], None] | None = None, history_days: int = 3,
             history_progress: Progress | None = None) -> DemoOutcome:
    """``history_days`` earlier game days are generated and run first, so that rolling
    averages (and therefore predictions) have history on the demo day (``history_progress``
    follows them; they used to be silent for seconds each). ``say`` gets text, or a
    ``(report, baseline)`` pair for each phase table (the CLI draws it). ``entity`` is an
    :class:`~framework.drive.updates.EntityRef` (default: the project's UPDATE_DEFAULTS)."""
    from framework.drive import session as s
    tell = say or (lambda text: None)
    check_demo(project_root, target)
    folder = s.reset_local_state(project_root)
    tell(f"reset {folder}")
    with s.Session.open(project_root, target) as sess:
        first = _dt.date.fromisoformat(date or s.default_sample_date(sess.project))
        day = (first + _dt.timedelta(days=history_days)).isoformat()
        counts = s.generate_sample(sess, first.isoformat(), days=history_days + 1)
        tell(f"generated {history_days + 1} sample days {first.isoformat()}..{day}: "
             + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))
        for k in range(history_days):
            earlier = (first + _dt.timedelta(days=k)).isoformat()
            report = s.run_partition(sess, earlier, full=True, mode="full", progress=history_progress)
            tell(f"history {earlier}: {report.status} in {report.seconds:.2f}s")
            if report.status == "failed":
                tell("a history day failed; see `pipectl history` and `pipectl status`")
                return DemoOutcome(earlier, report)
        tell(f"\n== full run of {day}: every processor, every entity ==")
        full = s.run_partition(sess, day, full=True, mode="full", progress=progress)
        tell((full, None))
        outcome = DemoOutcome(day, full)
        if full.status == "failed":
            tell("the full run failed; see `pipectl history` and `pipectl status`")
            return outcome
        from framework.drive.updates import update_defaults

        defaults = update_defaults(sess.project)
        edits = defaults.edits()
        chosen = _pick_entity(sess, day, entity or defaults.entity, edits, outcome.notes)
        outcome.entity = chosen
        what = "; ".join(f"{t or 'default table'}: " + ", ".join(f"{k}={v}" for k, v in c.items()) for t, c in edits)
        tell(f"\n== 2 PM update of one {chosen.kind}, {chosen} ({what}) ==")
        outcome.update = s.simulate_update(sess, day, chosen, progress=progress, edits=edits)
        tell((outcome.update.report, outcome.update.baseline))
        summary = _summary_hook(sess.project)
        if summary is not None:
            tell(summary(sess.warehouse, day, chosen.id))
        for note in outcome.notes:
            tell(note)
        tell(f"\ntrace it: pipectl trace {outcome.update.report.correlation_id}    list runs: pipectl history")
    return outcome


def _pick_entity(sess: Any, day: str, wanted: Any, edits: Any, notes: list[str]) -> Any:
    """The wanted entity if it has rows that day, else the first of its kind with raw rows
    (the NBA sample schedule does not have every team play every day). Applies the edits."""
    from framework.run.runner_io import partition_entities
    from framework.drive.session import apply_edits
    from framework.drive.updates import EntityRef

    candidates = [wanted]
    for proc in sess.project.processors.values():
        if proc.entity == wanted.kind and proc.phase == sess.project.phases[0].name and proc.output is not None:
            candidates += [EntityRef(wanted.kind, wanted.key, i) for i in partition_entities(sess.warehouse, sess.project, proc, day)[:50]]
            break
    for ref in candidates:
        try:
            apply_edits(sess, day, ref, edits)
        except ConfigError:  # no rows of that entity in an edited table that day
            continue
        if ref != wanted:
            notes.append(f"note: {wanted} has no rows on {day}; updated {ref} instead")
        return ref
    raise ConfigError(f"no {wanted.kind} of {day} could be updated", hint="generate sample data first (`pipectl sample`)")


def _summary_hook(project: Any) -> Callable[..., str] | None:
    """The project's optional ``demo_summary(warehouse, date, entity) -> str`` hook."""
    from framework.drive import session as s

    try:
        return s.sample_module(project, "demo_summary")
    except ConfigError:
        return None
