"""What a pipeline run reports: per phase the runs, entities, efficiency, time and the
orchestrator-to-trigger latency; for the run its status and what never triggered.

Plain data (``to_dict`` for ``--json``); the CLI renders it, the bench aggregates it.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from framework.runtime.runner import RunResult


@dataclass
class PhaseReport:
    phase: str
    runs: list[RunResult] = field(default_factory=list)
    seconds: float = 0.0
    trigger_id: str | None = None
    trigger_latency_seconds: float | None = None  # last completion published -> trigger pulled

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
        return "success" if "success" in statuses else ("no_data" if statuses else "not_run")

    def to_dict(self) -> dict[str, Any]:
        return {"phase": self.phase, "status": self.status, "seconds": round(self.seconds, 4),
                "entities_processed": self.entities_processed, "entities_total": self.entities_total,
                "distinct_entities": {k: len(v) for k, v in self.distinct_entities().items()},
                "efficiency_pct": self.efficiency_pct, "trigger_id": self.trigger_id,
                "trigger_latency_seconds": self.trigger_latency_seconds,
                "runs": [{"processor": r.processor, "status": r.status, "entities": r.entities_processed,
                          "rows": r.record_count, "seconds": r.duration_seconds, "error": r.error} for r in self.runs]}


@dataclass
class PipelineReport:
    partition: str
    correlation_id: str
    mode: str
    phases: list[PhaseReport] = field(default_factory=list)
    seconds: float = 0.0
    waiting: list[str] = field(default_factory=list)  # transitions that never fired, with reasons
    fast_forward_seconds: float = 0.0

    @property
    def status(self) -> str:
        statuses = [p.status for p in self.phases]
        if "failed" in statuses or self.waiting:
            return "failed"
        if "partial" in statuses:
            return "partial"
        return "success"

    def phase(self, name: str) -> PhaseReport | None:
        return next((p for p in self.phases if p.phase == name), None)

    def to_dict(self) -> dict[str, Any]:
        return {"partition": self.partition, "correlation_id": self.correlation_id, "mode": self.mode,
                "status": self.status, "seconds": round(self.seconds, 4), "waiting": self.waiting,
                "phases": [p.to_dict() for p in self.phases]}
