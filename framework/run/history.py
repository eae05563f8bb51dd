"""Run history: one record per processor run, kept in the project's StateStore.

Why the StateStore (SQLite ledger locally, Firestore on Google Cloud) and not a warehouse
table: starting a run must *atomically* check that no other run of the same processor and
partition is in progress and claim it. That is a small transactional read-then-write, which
the StateStore does well and a warehouse does badly. The production system this replaces
left 2,064 runs in 'running' after a retry storm (FM 20); here:

* ``start`` writes a ``running`` record and a claim on ``processor|partition`` in one
  transaction. A live claim (younger than ``stale_after_seconds``) makes the new run
  ``skipped`` (recorded, with the id of the run holding the claim).
* A claim older than the threshold is stale: its run is marked ``failed`` with the reason,
  and the new run takes over. :meth:`RunHistory.mark_stale` does the same for every
  partition, without a new run (the sweeper calls it).
* ``finish`` records the final status, durations, row and entity counts, efficiency and error,
  and releases the claim.

Collections: ``pipectl_runs`` (key: run id) and ``pipectl_run_claims`` (key:
``processor|partition``).
"""
from __future__ import annotations

import time
import uuid
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Mapping

RUNS = "pipectl_runs"
CLAIMS = "pipectl_run_claims"
FINAL_STATUSES = ("success", "partial", "no_data", "failed", "skipped")
DEFAULT_STALE_SECONDS = 3600.0


@dataclass
class RunRecord:
    """One processor run. ``correlation_id`` is the root id that traces a scrape to a
    prediction; ``parent_id`` is the execution id of the message that triggered this run."""

    run_id: str
    processor: str
    partition: str
    phase: str = ""
    status: str = "running"
    correlation_id: str = ""
    parent_id: str | None = None
    trigger_id: str | None = None
    mode: str = "full"  # full | incremental | replay | backfill | task
    started_at: float = 0.0
    finished_at: float | None = None
    duration_seconds: float | None = None
    durations: dict[str, float] = field(default_factory=dict)  # detect / transform / write / publish
    rows_written: int = 0
    entities_processed: int = 0
    entities_total: int = 0
    efficiency_pct: float | None = None
    full_batch: bool = True
    fallback_reason: str | None = None
    entity_kind: str | None = None
    entities: list[str] = field(default_factory=list)  # first ids processed (capped), for trace
    error: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any]) -> "RunRecord":
        known = {f for f in cls.__dataclass_fields__}
        return cls(**{k: v for k, v in doc.items() if k in known})


@dataclass(frozen=True)
class RunClaim:
    """The outcome of :meth:`RunHistory.start`: the run, and whether it may proceed."""

    run: RunRecord
    acquired: bool
    reason: str | None = None  # why it was skipped
    took_over_from: str | None = None  # stale run id marked failed


class RunHistory:
    """Run records over a StateStore. Thread and process safe through store transactions."""

    def __init__(self, store: Any, stale_after_seconds: float = DEFAULT_STALE_SECONDS,
                 clock: Callable[[], float] = time.time):
        self.store = store
        self.stale_after = stale_after_seconds
        self.clock = clock

    # -- lifecycle -----------------------------------------------------------------
    def start(self, processor: str, partition: str, *, phase: str = "", run_id: str | None = None,
              correlation_id: str = "", parent_id: str | None = None, trigger_id: str | None = None,
              mode: str = "full", metadata: Mapping[str, Any] | None = None) -> RunClaim:
        """Record a run as running and claim processor+partition; skip if a live run holds it."""
        run = RunRecord(run_id=run_id or new_run_id(), processor=processor, partition=str(partition), phase=phase,
                        correlation_id=correlation_id or "", parent_id=parent_id, trigger_id=trigger_id, mode=mode,
                        started_at=self.clock(), metadata=dict(metadata or {}))
        key = claim_key(processor, partition)

        def txn(t: Any) -> RunClaim:
            claim = t.get(CLAIMS, key)
            holder = t.get(RUNS, claim["run_id"]) if claim else None
            now = self.clock()
            if claim and holder and holder.get("status") == "running":
                age = now - float(claim.get("started_at", 0))
                if age < self.stale_after:
                    run.status = "skipped"
                    run.finished_at = now
                    run.duration_seconds = 0.0
                    run.error = f"run {claim['run_id']} of {processor} for {partition} is already running (for {age:.0f}s)"
                    t.set(RUNS, run.run_id, run.to_dict())
                    return RunClaim(run, False, run.error)
                t.update(RUNS, claim["run_id"], _stale_fields(now, age, self.stale_after, run.run_id))
                t.set(CLAIMS, key, {"run_id": run.run_id, "started_at": now})
                t.set(RUNS, run.run_id, run.to_dict())
                return RunClaim(run, True, took_over_from=claim["run_id"])
            t.set(CLAIMS, key, {"run_id": run.run_id, "started_at": now})
            t.set(RUNS, run.run_id, run.to_dict())
            return RunClaim(run, True)

        return self.store.run_transaction(txn)

    def finish(self, run: RunRecord, status: str, **fields: Any) -> RunRecord:
        """Write the final status and release the claim (only if this run still holds it)."""
        if status not in FINAL_STATUSES:
            raise ValueError(f"final run status must be one of {FINAL_STATUSES}, got {status!r}")
        now = self.clock()
        run.status = status
        run.finished_at = now
        run.duration_seconds = round(now - run.started_at, 6)
        for name, value in fields.items():
            if not hasattr(run, name):
                raise AttributeError(f"RunRecord has no field {name!r}")
            setattr(run, name, value)
        key = claim_key(run.processor, run.partition)

        def txn(t: Any) -> None:
            claim = t.get(CLAIMS, key)
            t.set(RUNS, run.run_id, run.to_dict())
            if claim and claim.get("run_id") == run.run_id:
                t.delete(CLAIMS, key)

        self.store.run_transaction(txn)
        return run

    def mark_stale(self) -> list[str]:
        """Mark every running run older than the threshold failed and release its claim.
        Returns the run ids marked. The sweeper calls this (FM 20)."""
        now = self.clock()
        marked: list[str] = []
        for key, claim in self.store.query(CLAIMS):
            age = now - float(claim.get("started_at", 0))
            if age < self.stale_after:
                continue

            def txn(t: Any, key: str = key, run_id: str = claim["run_id"]) -> bool:
                current = t.get(CLAIMS, key)
                doc = t.get(RUNS, run_id)
                if not current or current.get("run_id") != run_id:
                    return False
                if doc and doc.get("status") == "running":
                    t.update(RUNS, run_id, _stale_fields(now, age, self.stale_after, None))
                t.delete(CLAIMS, key)
                return bool(doc and doc.get("status") == "running")

            if self.store.run_transaction(txn):
                marked.append(claim["run_id"])
        return marked

    # -- queries -------------------------------------------------------------------
    def get(self, run_id: str) -> RunRecord | None:
        doc = self.store.get(RUNS, run_id)
        return RunRecord.from_dict(doc) if doc else None

    def list(self, processor: str | None = None, partition: str | None = None, status: str | None = None,
             correlation_id: str | None = None, limit: int | None = 50) -> list[RunRecord]:
        """Runs, newest first, filtered by equality on the given fields."""
        where = {k: v for k, v in {"processor": processor, "partition": partition, "status": status,
                                     "correlation_id": correlation_id}.items() if v is not None}
        runs = [RunRecord.from_dict(doc) for _, doc in self.store.query(RUNS, where or None)]
        runs.sort(key=lambda r: (r.started_at, r.run_id), reverse=True)
        return runs[:limit] if limit else runs


def _stale_fields(now: float, age: float, threshold: float, successor: str | None) -> dict[str, Any]:
    reason = f"stale: still 'running' after {age:.0f}s (threshold {threshold:.0f}s); process presumed dead"
    if successor:
        reason += f"; superseded by run {successor}"
    return {"status": "failed", "finished_at": now, "error": reason}


def claim_key(processor: str, partition: Any) -> str:
    return f"{processor}|{partition}"


def new_run_id() -> str:
    return uuid.uuid4().hex[:16]
