"""What a pipeline run reports: per phase the runs, entities, efficiency, time and the
orchestrator-to-trigger latency; for the run its status and what never triggered.

Plain data (``to_dict`` for ``--json``); the CLI renders it, the bench aggregates it.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from framework.run.runner import RunResult


@dataclass
class PhaseReport:
    """What one phase of a run did: its processor runs, time, entities, and why it ran or not."""

    phase: str
    runs: list[RunResult] = field(default_factory=list)
    seconds: float = 0.0
    # CPU seconds of this process (every thread: DuckDB's, fan-out workers') while the phase
    # ran: what the phase cost, even on a machine whose other load stretches wall time
    cpu_seconds: float = 0.0
    trigger_id: str | None = None
    trigger_latency_seconds: float | None = None  # last completion published -> trigger pulled
    note: str | None = None  # why nothing ran (its round dispatched nothing: no input changed)

    @property
    def entities_processed(self) -> int:
        return sum(r.entities_processed for r in self.runs)

    @property
    def entities_total(self) -> int:
        return sum(r.entities_total for r in self.runs)

    def distinct_entities(self) -> dict[str, list[str]]:
        """Entity ids processed in this phase, per kind (one player through five processors
        is one player)."""
        out: dict[str, set[str]] = {}
        for r in self.runs:
            if r.entity_kind and r.entity_ids:
                out.setdefault(r.entity_kind, set()).update(r.entity_ids)
        return {k: sorted(v) for k, v in sorted(out.items())}

    @property
    def efficiency_pct(self) -> float | None:
        total = self.entities_total
        if not total:
            return None
        return round(100.0 * (1 - min(self.entities_processed, total) / total), 2)

    @property
    def status(self) -> str:
        statuses = {r.status for r in self.runs}
        for s in ("failed", "partial", "skipped"):
            if s in statuses:
                return s
        if "success" in statuses:
            return "success"
        return "no_data" if statuses else ("unchanged" if self.note else "not_run")

    def to_dict(self) -> dict[str, Any]:
        return {"phase": self.phase, "status": self.status, "seconds": round(self.seconds, 4),
                "cpu_seconds": round(self.cpu_seconds, 4),
                "entities_processed": self.entities_processed, "entities_total": self.entities_total,
                "distinct_entities": {k: len(v) for k, v in self.distinct_entities().items()},
                "efficiency_pct": self.efficiency_pct, "trigger_id": self.trigger_id,
                "trigger_latency_seconds": self.trigger_latency_seconds, "note": self.note,
                "runs": [{"processor": r.processor, "run_id": r.run_id, "status": r.status, "entities": r.entities_processed,
                          "rows": r.record_count, "seconds": r.duration_seconds, "error": r.error,
                          "reason": r.fallback_reason, "tasks": r.tasks} for r in self.runs]}


@dataclass
class PipelineReport:
    """What one partition's run through the phases did, for the CLI, the UI and --json."""

    partition: str
    correlation_id: str
    mode: str
    phases: list[PhaseReport] = field(default_factory=list)
    seconds: float = 0.0
    waiting: list[str] = field(default_factory=list)  # transitions that never fired, with reasons
    fast_forward_seconds: float = 0.0
    # phases this driver ran for triggers of *other* correlation ids (a late round of an
    # earlier run reaching the bus now): executed, but not counted in this run's figures
    other_rounds: list[PhaseReport] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # processors a replay did not run, and why

    @property
    def status(self) -> str:
        statuses = [p.status for p in self.phases]
        if "failed" in statuses or self.waiting:
            return "failed"
        if "partial" in statuses:
            return "partial"
        if "skipped" in statuses:  # a processor did not run (another live run holds its claim): not a success
            return "skipped"
        return "success"

    @property
    def changed(self) -> bool:
        """Some processor of this run wrote rows (or ran a full batch)."""
        return any(r.status in ("success", "partial") for p in self.phases for r in p.runs)

    @property
    def summary(self) -> str:
        """One honest line: a run that found nothing to do is a success that says so."""
        status = self.status
        if status == "failed":
            return "failed: see waiting and the runs' errors"
        if not self.changed and status == "success":
            return "nothing changed since the last run"
        runs = [r for p in self.phases for r in p.runs if r.status in ("success", "partial")]
        done = sum(r.entities_processed for r in runs)
        return (f"{plural(len(runs), 'processor run')} wrote changes, {plural(done, 'entity-run')} processed")

    def phase(self, name: str) -> PhaseReport | None:
        return next((p for p in self.phases if p.phase == name), None)

    def to_dict(self) -> dict[str, Any]:
        return {"partition": self.partition, "correlation_id": self.correlation_id, "mode": self.mode,
                "status": self.status, "summary": self.summary, "seconds": round(self.seconds, 4), "waiting": self.waiting, "notes": self.notes,
                "phases": [p.to_dict() for p in self.phases],
                "other_rounds": [p.to_dict() for p in self.other_rounds]}


EFFICIENCY_NOTE = ("EFFICIENCY: share of a full batch's entity-runs this run skipped, 1 - PROCESSED/total "
                   "(0.0% = every entity reprocessed, as a full batch does; 99% = 1 entity in 100)")


def plural(n: int, word: str, many: str | None = None) -> str:
    """``1 processor``, ``2 processors`` (never "1 processors")."""
    return f"{n} {word if n == 1 else (many or word + 's')}"


def phase_table(report: Any, baseline: dict[str, float] | None = None) -> str:
    """Per phase: distinct entities, entity-runs processed of total, efficiency, time (and
    the full-batch time of the same phase, when known)."""
    head = f"{'PHASE':<12} {'STATUS':<9} {'ENTITIES':<20} {'PROCESSED':>15} {'EFFICIENCY':>10} {'TIME':>9}"
    lines = [head + ("  FULL BATCH" if baseline is not None else "")]
    for ph in report.phases:
        eff = f"{ph.efficiency_pct:.1f}%" if ph.efficiency_pct is not None else "-"
        kinds = ", ".join(f"{len(v)} {k}" + ("s" if len(v) != 1 else "") for k, v in ph.distinct_entities().items()) or "-"
        done = f"{ph.entities_processed} of {ph.entities_total}"
        row = f"{ph.phase:<12} {ph.status:<9} {kinds:<20} {done:>15} {eff:>10} {ph.seconds:>8.3f}s"
        if baseline is not None:
            full = baseline.get(ph.phase)
            row += f"  {full:>8.3f}s" if full is not None else "       n/a"
            if full and ph.seconds and any(r.status in ("success", "partial") for r in ph.runs):
                row += f"  ({full / ph.seconds:.1f}x)"
        lines.append(row)
    lines.append(f"total {report.seconds:.3f}s, status {report.status}, correlation id {report.correlation_id}")
    if getattr(report, "summary", None):
        lines.append(report.summary)
    for ph in report.other_rounds:
        lines.append(f"also ran: {ph.phase} for an earlier run's late round (trigger {ph.trigger_id}, "
                     f"{len(ph.runs)} processor(s), {ph.seconds:.3f}s)")
    lines += [f"note: {n}" for n in getattr(report, "notes", [])]
    lines += [f"waiting: {w}" for w in report.waiting]
    if report.phases:
        lines.append(EFFICIENCY_NOTE + ("; FULL BATCH: the last full run of the same phase and date, "
                                        "(Nx) how much longer it took" if baseline is not None else ""))
    return "\n".join(lines)


def brief(res: Any) -> dict[str, Any]:
    """One processor run as a progress event (the CLI's progress line)."""
    return {"processor": res.processor, "phase": res.phase, "status": res.status, "entities": res.entities_processed,
            "total": res.entities_total, "rows": res.record_count, "seconds": round(res.duration_seconds, 4),
            "error": res.error, "reason": res.fallback_reason}


def decision_text(decision: Any) -> str:
    """The orchestrator decision's most telling text, for a progress event."""
    for attr in ("summary", "reason", "action"):
        value = getattr(decision, attr, None)
        if value:
            return str(value)
    return str(decision)
