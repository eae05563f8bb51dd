"""What a processor run is asked to do (:class:`RunRequest`) and what it did
(:class:`RunResult`): the runner's vocabulary, shared by the driver, the worker and the
fan-out without importing the runner itself. Re-exported by :mod:`framework.run.runner`.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Sequence

UNCHANGED_INPUTS = "inputs unchanged since the last run (no query)"


@dataclass
class RunRequest:
    """What to run. ``entities`` (ids of the processor's entity kind, e.g. from a replay,
    already mapped to that kind by :mod:`framework.drive.replay`) bypass change detection;
    ``full`` forces a full batch of the partition; ``reason`` says where explicit entities
    came from (recorded as the run's reason)."""

    processor: str
    partition: str
    entities: Sequence[str] | None = None
    full: bool = False
    correlation_id: str | None = None
    parent_id: str | None = None
    trigger_id: str | None = None
    mode: str = "incremental"
    publish: bool = True
    run_id: str | None = None
    reason: str | None = None
    # every processor the phase worker runs (or reports not run) for this trigger: the
    # orchestrator expects all of them in the round (code changes and --full run more than
    # the trigger dispatched), so it never fires before the last one reported
    round_processors: Sequence[str] | None = None
    # remote fan-out only: what the instance that finishes the fan-out runs next (the rest of
    # the phase, framework.worker); stored verbatim with the dispatched run
    continuation: dict[str, Any] | None = None
    # an incremental round of the driver: a processor whose inputs no run wrote since it last
    # processed them ends no_data without a warehouse query (framework.run.input_versions);
    # sources_announced: the trigger named the landing sources it changed
    trust_versions: bool = False
    sources_announced: bool = False


@dataclass
class RunResult:
    run_id: str
    processor: str
    phase: str
    partition: str
    status: str  # success | partial | no_data | failed | skipped | dispatched (remote fan-out: finished elsewhere)
    correlation_id: str
    parent_id: str | None = None
    record_count: int = 0
    entities_processed: int = 0
    entities_total: int = 0
    efficiency_pct: float | None = None
    full_batch: bool = False
    entity_kind: str | None = None
    entity_ids: list[str] = field(default_factory=list)
    duration_seconds: float = 0.0
    durations: dict[str, float] = field(default_factory=dict)
    error: str | None = None
    error_type: str | None = None
    fallback_reason: str | None = None
    code_changed: str | None = None  # why this processor's code differs from the last run's
    tasks: int | None = None  # fan-out tasks published (fanned-out processors only)
    failed_entities: dict[str, str] = field(default_factory=dict)
    tests: list[dict[str, Any]] = field(default_factory=list)  # data test results (processors.yaml tests:)
    message_id: str | None = None
    envelope: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
