"""``pipectl run`` / ``backfill`` on an ``execution: remote`` target: publish, then follow.

The processors run in the worker service (Cloud Run, fed by Pub/Sub push); the orchestrator
runs in its function. This process only does what a scraper and an operator would: it
publishes the first phase's trigger for a partition, then watches what the deployment
records, until the partition's run is over or the timeout passes. It never imports the
processor runner (a test asserts it). What it reads, all from the target's StateStore:

- ``pipectl_messages``: every trigger a worker accepted, with this run's correlation id and
  the round's dispatch list (``[]``: nothing to run there, so no later phase of this run
  can receive anything either: done, "unchanged");
- the run history: every processor run of the correlation id, running or final;
- the ledger (``Orchestrator.status``): a transition blocked by a quality gate or expired
  ends the run early with the orchestrator's reason; an open debounce window or tier is
  waited for. Like the scheduled sweep, the follower runs a sweep pass for its partition
  when a boundary has passed (idempotent: exactly one trigger either way); with
  ``fast_forward`` it moves the ledger's virtual clock there instead of waiting, as the
  local driver does (for test and development projects: it moves every partition's clock).

A phase is done when its trigger arrived and every processor the trigger dispatched (all of
the phase's enabled processors for the first trigger) has a final run of this correlation
id, with none still running. The run is over when every phase is done and the partition's
rounds settled (none open, or three sweeps changed nothing, as the local driver's idle
sweeps). The follower sweeps only when nothing of the run is in flight: no phase running, and
the ledger has recorded the completion of every run seen; a sweep (a fast-forward above all)
while a completion is still on its way would fire a transition without it.
"""
from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

from framework.errors import ConfigError, QualityGateError
from framework.manifest.model import Project
from framework.run.history import FINAL_STATUSES, RunHistory, RunRecord
from framework.drive.trace import MESSAGES

Progress = Callable[[str, dict[str, Any]], None]
STOPPED_VERDICTS = ("blocked", "expired", "gate_failed")
IDLE_POLLS = 3  # polls with nothing new before sweeping: completions in flight reach the orchestrator first
SETTLE_SWEEPS = 3  # as the local driver's idle sweeps once every phase is done


def trigger_topic(project: Project, phase: str) -> str:
    """The topic that triggers ``phase``: the previous transition's, else a trigger topic
    consumed by ``phase:<name>`` (the scrapers' topic of the first phase)."""
    names = project.phase_names()
    idx = names.index(phase)
    if idx > 0:
        prev = project.phases[idx - 1].transition
        if prev and prev.trigger_topic:
            return prev.trigger_topic
    for topic in project.topics.values():
        if topic.contract == "trigger" and f"phase:{phase}" in topic.consumers:
            return topic.name
    raise ConfigError(f"no trigger topic for phase '{phase}' in topics.yaml",
                      hint=f"declare a topic with contract: trigger consumed by phase:{phase}")


@dataclass
class PhaseProgress:
    """One phase of a followed run: its trigger, what it must run and the runs seen."""

    phase: str
    trigger_id: str | None = None
    expected: list[str] | None = None
    runs: dict[str, RunRecord] = field(default_factory=dict)
    note: str | None = None
    done: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {"phase": self.phase, "trigger_id": self.trigger_id, "expected": self.expected, "note": self.note,
                "done": self.done, "runs": [{"processor": r.processor, "status": r.status, "rows": r.rows_written,
                                             "entities": r.entities_processed, "total": r.entities_total,
                                             "seconds": r.duration_seconds, "error": r.error, "run_id": r.run_id}
                                            for r in sorted(self.runs.values(), key=lambda r: r.started_at)]}


@dataclass
class RemoteReport:
    """What a followed run saw. ``status``: success | partial | skipped | failed | blocked | timeout
    (the last three exit 1)."""

    partition: str
    correlation_id: str
    trigger_id: str
    phases: list[PhaseProgress]
    status: str = "running"
    waiting: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.status in ("success", "partial", "skipped")

    def to_dict(self) -> dict[str, Any]:
        return {"partition": self.partition, "correlation_id": self.correlation_id, "trigger_id": self.trigger_id,
                "execution": "remote", "status": self.status, "seconds": round(self.seconds, 3),
                "waiting": self.waiting, "phases": [p.to_dict() for p in self.phases]}

    def text(self) -> str:
        lines = [f"{self.partition} (remote, correlation id {self.correlation_id}): {self.status} in {self.seconds:.1f}s"]
        for ph in self.phases:
            head = f"[{ph.phase}] " + ("done" if ph.done else "not done") + (f": {ph.note}" if ph.note else "")
            lines.append(head)
            for r in sorted(ph.runs.values(), key=lambda r: r.started_at):
                err = f"  error: {r.error}" if r.error else ""
                lines.append(f"  {r.processor:<36} {r.status:<8} {r.entities_processed:>4}/{r.entities_total:<4} entities "
                             f"{r.rows_written:>6} rows{err}")
        lines += [f"waiting: {w}" for w in self.waiting]
        lines.append(f"trace: pipectl trace {self.correlation_id}")
        return "\n".join(lines)


class RemoteRun:
    """One partition: publish its first trigger, then :meth:`poll` until :attr:`finished`."""

    def __init__(self, project: Project, bus: Any, store: Any, orchestrator: Any, partition: str,
                 from_phase: str | None = None, mode: str = "incremental", progress: Progress | None = None,
                 fast_forward: bool = False, clock: Callable[[], float] = time.monotonic):
        names = project.phase_names()
        start = from_phase or names[0]
        if start not in names:
            from framework.manifest.diagnostics import did_you_mean

            raise ConfigError(f"unknown phase '{start}'", hint=did_you_mean(start, names) or f"phases: {', '.join(names)}")
        self.project, self.bus, self.store, self.orchestrator = project, bus, store, orchestrator
        self.partition, self.mode, self.fast_forward, self.clock = str(partition), mode, fast_forward, clock
        self.progress = progress or (lambda event, data: None)
        self.phases = names[names.index(start):]
        self.correlation_id = uuid.uuid4().hex[:16]
        self.trigger_id = f"remote:{start}:{self.partition}:{uuid.uuid4().hex[:8]}"
        self.report = RemoteReport(self.partition, self.correlation_id, self.trigger_id,
                                   [PhaseProgress(p) for p in self.phases])
        self.history = RunHistory(store)
        self._started = 0.0
        self._seen: set[tuple[str, str]] = set()
        self._idle = 0  # polls in a row that saw nothing move
        self._settle = 0  # sweeps since every phase was done

    @property
    def finished(self) -> bool:
        return self.report.status != "running"

    # ------------------------------------------------------------------ start
    def start(self) -> None:
        """Publish the first trigger (the envelope `pipectl run` publishes locally)."""
        from framework.orchestrator.envelope import make_envelope, serialize

        phase = self.phases[0]
        env = make_envelope(kind="trigger", processor_name="pipectl:run", phase=phase,
                            partition_column=self.project.partition_column, execution_id=self.correlation_id,
                            correlation_id=self.correlation_id, partition=self.partition, status="success",
                            record_count=0, duration_seconds=0.0, entities_changed=None, trigger_id=self.trigger_id,
                            round=1, metadata={"mode": self.mode, "source": "pipectl run (remote)"})
        self.bus.publish(trigger_topic(self.project, phase), serialize(env),
                         {"trigger_id": self.trigger_id, "partition": self.partition})
        self._started = self.clock()
        self.progress("start", {"partition": self.partition, "correlation_id": self.correlation_id, "mode": self.mode,
                                "phases": self.phases, "execution": "remote"})

    # ------------------------------------------------------------------ follow
    def poll(self) -> bool:
        """Read what the deployment recorded; True when something moved."""
        moved = self._read_runs() | self._read_triggers()
        self._settle_phases()
        self.report.seconds = self.clock() - self._started
        self._idle = 0 if moved else self._idle + 1
        busy = any(p.trigger_id is not None and not p.done for p in self.report.phases)
        if all(p.done for p in self.report.phases):
            # settled when no round of the partition is open, or a few sweeps changed nothing
            # (a late round waiting for its deadline is the orchestrator's to report: status)
            if not self._open_rounds() or self._settle >= SETTLE_SWEEPS:
                self._finish()
                return True
            if self._idle >= IDLE_POLLS:
                self._settle += 1
                moved |= self._sweep()
            return moved
        stopped = self._stopped()
        if stopped:
            self.report.waiting = stopped
            self._finish("blocked")
            return True
        # the scheduled sweep's work, for this partition; never while a phase still runs (a
        # fast-forward then would fire a tier or a deadline the running processors would meet)
        caught_up = self._ledger_caught_up() or self._idle >= 5 * IDLE_POLLS  # (an older round holds them)
        if not busy and self._idle >= IDLE_POLLS and caught_up:
            moved |= self._sweep()
        return moved

    def _ledger_caught_up(self) -> bool:
        """Every run of this run that publishes a completion is recorded in its transition's
        ledger (the orchestrator function has handled it)."""
        recorded: dict[str, set[str]] = {}
        for st in self.orchestrator.status(self.partition):
            recorded.setdefault(st.transition.split("->")[0], set()).update(st.completed, st.failed)
        for ph in self.report.phases:
            phase = self.project.phase(ph.phase)
            if phase.transition is None or not phase.transition.completion_topic:
                continue
            published = {n for n, r in ph.runs.items() if r.status in ("success", "partial", "no_data", "failed")}
            if not published <= recorded.get(ph.phase, set()):
                return False
        return True

    def _read_runs(self) -> bool:
        moved = False
        by_phase = {p.phase: p for p in self.report.phases}
        for run in self.history.list(correlation_id=self.correlation_id, limit=None):
            ph = by_phase.get(run.phase)
            if ph is None:
                continue
            old = ph.runs.get(run.processor)
            if old is None or old.status != run.status or old.run_id != run.run_id:
                if old is None or run.started_at >= old.started_at:
                    ph.runs[run.processor] = run
                    moved = True
                    if run.status in FINAL_STATUSES and (run.run_id, run.status) not in self._seen:
                        self._seen.add((run.run_id, run.status))
                        self.progress("processor_done", {"phase": run.phase, "processor": run.processor,
                                                         "status": run.status, "entities": run.entities_processed,
                                                         "total": run.entities_total, "rows": run.rows_written,
                                                         "seconds": run.duration_seconds or 0.0, "error": run.error})
        return moved

    def _read_triggers(self) -> bool:
        moved = False
        by_phase = {p.phase: p for p in self.report.phases}
        docs = sorted((d for _, d in self.store.query(MESSAGES, {"correlation_id": self.correlation_id})),
                      key=lambda d: d.get("received_at") or 0)
        for doc in docs:
            ph = by_phase.get(doc.get("phase"))
            if ph is None or str(doc.get("partition")) != self.partition or ph.trigger_id == doc.get("trigger_id"):
                continue
            ph.trigger_id = doc.get("trigger_id")
            dispatched = doc.get("dispatched")
            ph.expected = list(dispatched) if isinstance(dispatched, list) else self._phase_processors(ph.phase)
            ph.done = False
            moved = True
            self.progress("phase_start", {"phase": ph.phase, "processors": ph.expected, "trigger_id": ph.trigger_id})
        return moved

    def _phase_processors(self, phase: str) -> list[str]:
        return sorted(p.name for p in self.project.processors_in(phase) if p.enabled)

    def _settle_phases(self) -> None:
        empty_before: str | None = None
        for ph in self.report.phases:
            if ph.trigger_id is None:
                if empty_before is not None and not ph.done:
                    ph.done, ph.note = True, f"nothing changed upstream ({empty_before} had nothing to run)"
                continue
            if ph.expected == []:
                ph.done, ph.note = True, "nothing to run: no input of this phase changed"
                empty_before = ph.phase
                continue
            empty_before = None
            final = {n for n, r in ph.runs.items() if r.status in FINAL_STATUSES}
            running = [n for n, r in ph.runs.items() if r.status not in FINAL_STATUSES]
            was = ph.done
            ph.done = set(ph.expected or ()) <= final and not running
            if ph.done and not was:
                self.progress("phase_done", ph.to_dict())

    def _open_rounds(self) -> bool:
        names = set(self.phases)
        return any(st.state == "open" and st.next_check_at and st.transition.split("->")[0] in names
                   for st in self.orchestrator.status(self.partition))

    def _stopped(self) -> list[str]:
        """A transition of this run that the orchestrator stopped (gate, deadline): its reason."""
        out = []
        for st in self.orchestrator.status(self.partition):
            source, _, target = st.transition.partition("->")
            nxt = next((p for p in self.report.phases if p.phase == target), None)
            src = next((p for p in self.report.phases if p.phase == source), None)
            if nxt is None or src is None or not src.done or nxt.trigger_id is not None:
                continue
            if st.verdict in STOPPED_VERDICTS:
                out.append(f"phase {target} never triggered (transition {st.transition}): {st.state}/{st.verdict}: "
                           f"{st.reason}; failed {st.failed or '-'}, missing {st.missing or '-'}; recover with "
                           f"`pipectl run --date {self.partition} --from-phase {target}` after the fix")
        return out

    def _sweep(self) -> bool:
        """What the scheduled sweep does, for this partition, when a boundary is due (or, with
        ``fast_forward``, moved to: only when nothing of the run is in flight, see
        :meth:`poll`). True when it fired something."""
        now = self.orchestrator.clock()
        due = [st.next_check_at for st in self.orchestrator.status(self.partition)
               if st.state == "open" and st.next_check_at]
        if not due:
            return False
        if min(due) > now:
            if not self.fast_forward:
                return False
            self.orchestrator.clock.advance(min(due) - now + 0.5)
        try:
            decisions = self.orchestrator.sweep(partition=self.partition)
        except QualityGateError as exc:
            self.report.waiting.append(exc.render())
            return False
        return bool(decisions)

    def _finish(self, status: str | None = None) -> None:
        runs = [r for p in self.report.phases for r in p.runs.values()]
        if status is None:  # as a local run: any failed run fails it, then partial, then skipped
            statuses = {r.status for r in runs}
            status = next((s for s in ("failed", "partial", "skipped") if s in statuses), "success")
            self.report.waiting += [f"{r.processor} [{r.phase}] failed: {r.error}" for r in runs if r.status == "failed"]
        self.report.status = status
        self.report.seconds = self.clock() - self._started
        self.progress("end", self.report.to_dict())

    def give_up(self, timeout: float) -> None:
        """The timeout passed: say what is still missing, per phase."""
        for ph in self.report.phases:
            if ph.done:
                continue
            if ph.trigger_id is None:
                self.report.waiting.append(f"phase {ph.phase}: no trigger received yet")
            else:
                missing = sorted(set(ph.expected or ()) - {n for n, r in ph.runs.items() if r.status in FINAL_STATUSES})
                self.report.waiting.append(f"phase {ph.phase}: still running or not started: {', '.join(missing) or '-'}")
        self.report.waiting.append(f"timed out after {timeout:.0f}s; the deployment goes on: follow with "
                                   f"`pipectl status --date {self.partition}` and `pipectl trace {self.correlation_id}`")
        self._finish("timeout")


def follow(runs: Sequence[RemoteRun], *, concurrency: int = 1, timeout: float = 3600.0, poll_seconds: float = 2.0,
           sleep: Callable[[float], None] = time.sleep, clock: Callable[[], float] = time.monotonic) -> list[RemoteReport]:
    """Start ``runs`` at most ``concurrency`` at a time and follow each until it ends or its
    own ``timeout`` (from its start) passes. Reports in the order of ``runs``."""
    waiting = list(runs)
    active: list[tuple[RemoteRun, float]] = []
    while waiting or active:
        while waiting and len(active) < max(1, concurrency):
            run = waiting.pop(0)
            run.start()
            active.append((run, clock()))
        moved = False
        for run, started in list(active):
            moved |= run.poll()
            if not run.finished and clock() - started > timeout:
                run.give_up(timeout)
            if run.finished:
                active.remove((run, started))
        if active and not moved:
            sleep(poll_seconds)
    return [r.report for r in runs]


__all__ = ["RemoteRun", "RemoteReport", "PhaseProgress", "follow", "trigger_topic"]
