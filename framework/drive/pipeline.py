"""Drive one partition through every phase over the bus and the orchestrator.

``pipectl run --date D`` is the local stand-in for the production deployment: scrapers
publish to the first phase's trigger topic, each phase's worker consumes its trigger
subscription and runs the phase's processors, each processor publishes its completion, the
generic orchestrator consumes the completions and publishes the next trigger exactly once.
:class:`PipelineDriver` plays every one of those roles in one process, in the same order
they would happen in production, through the real bus and ledger:

* phase worker: pull the phase's trigger subscription, drop trigger ids already handled
  (``TriggerDedup``), run the phase's selected processors in topological order (processors
  of one phase may depend on each other; which ones and on what: :mod:`framework.drive.phase_run`), ack;
* orchestrator: pull every completion subscription, ``handle_completion``, ack;
* when the bus is idle but a transition has not fired (a debounce window or tiered timeout
  is open), the driver fast-forwards its clock to the next policy boundary and calls
  ``sweep()``, as the scheduled sweeper would in production. The bus has already delivered
  everything, so waiting in real time would only add idle minutes.

Replay (``entities=...``) reprocesses the given entities in every phase from ``from_phase``
on: processors of the given kind get exactly those ids, processors of another kind the ids
mapped through the declared entity mappings, and a processor whose kind nothing maps to is
reported not run with the reason (:mod:`framework.drive.replay`); otherwise each processor
detects its own changes.
"""
from __future__ import annotations

import logging
import time
import uuid
from typing import Any, Callable, Mapping, Sequence

from framework.errors import EnvelopeError, PipectlError, QualityGateError
from framework.graph.graph import PipelineGraph
from framework.manifest.model import Project
from framework.orchestrator.clock import VirtualClock
from framework.drive.driver_state import RunContext, envelope_partition, fast_forward, finished, open_rounds, waiting
from framework.drive.phase_run import owed, run_phase
from framework.drive.reports import PipelineReport, decision_text as _decision_text
from framework.run.runner import ProcessorRunner, count_partition_rows

log = logging.getLogger(__name__)

Progress = Callable[[str, dict[str, Any]], None]


class PipelineDriver:
    """Runs phases for a partition through ``backends`` (warehouse, bus, state)."""

    def __init__(self, project: Project, warehouse: Any, bus: Any, store: Any, alerts: Any = None,
                 progress: Progress | None = None, clock: VirtualClock | None = None):
        from framework.orchestrator.engine import Orchestrator, TriggerDedup
        from framework.drive.bus_setup import ensure_topology

        self.project = project
        self.graph = PipelineGraph(project)
        self.warehouse, self.bus, self.store, self.alerts = warehouse, bus, store, alerts
        self.clock = clock or VirtualClock(store=store)
        self.progress = progress or (lambda event, data: None)
        topology = ensure_topology(bus, project)
        if topology.orphan_subscriptions:  # FM 18: each one delivers every message a second time
            text = (f"subscription(s) {', '.join(topology.orphan_subscriptions)} on topics of this project are not "
                    f"declared in topics.yaml: each receives every message a second time; delete them "
                    f"(`pipectl plan` shows them, `pipectl apply --prune` removes them) or declare them")
            log.warning("%s", text)
            if alerts is not None:
                alerts.alert("orphan_subscriptions", "warning", text, {"subscriptions": ", ".join(topology.orphan_subscriptions)})
        self.runner = ProcessorRunner(project, warehouse, bus, store, alerts=alerts)  # history on wall time
        self.orchestrator = Orchestrator(project, store, bus, alerts=alerts, clock=self.clock,
                                         gate_checker=self._gate_rows)
        self.dedup = TriggerDedup(store)
        self._ensure_tables()
        stale = self.runner.history.mark_stale() if self.runner.history is not None else []
        if stale and alerts is not None:  # FM 20: runs left 'running' by a dead process
            alerts.alert("stale_runs", "warning", f"{len(stale)} run(s) left 'running' were marked failed",
                         {"runs": ", ".join(stale[:10])})

    def _ensure_tables(self) -> None:
        """Create missing output tables of every processor (what `pipectl apply` does), so a
        disabled processor's table exists, empty, for the inputs that still name it; a table
        found missing is rebuilt by its processor (ProcessorRunner.check_outputs)."""
        self.runner.check_outputs(list(self.project.processors.values()))
        self._outputs_checked = True  # the first run need not list the tables again

    def _gate_rows(self, gate: Any, partition: str) -> int:
        """A quality gate's count: from the run's counts when it has them (counted with the
        run's other counts, moved by its writes: framework.run.row_counts), else its own query."""
        with self.runner.lock:
            proc = self.project.resolve_processor(gate.processor)
            if self.runner.rows is not None and proc is not None and proc.output is not None:
                return self.runner.rows.rows(proc.output, partition)
            return count_partition_rows(self.warehouse, self.project, gate.processor, partition, self.runner.ready_tables)

    # ------------------------------------------------------------------ topology lookups
    def trigger_topic(self, phase: str) -> str | None:
        """The topic that triggers ``phase``: the previous transition's, else a trigger topic
        consumed by ``phase:<name>`` (the scrapers' topic of the first phase)."""
        names = self.project.phase_names()
        idx = names.index(phase)
        if idx > 0:
            prev = self.project.phases[idx - 1].transition
            if prev and prev.trigger_topic:
                return prev.trigger_topic
        for topic in self.project.topics.values():
            if topic.contract == "trigger" and f"phase:{phase}" in topic.consumers:
                return topic.name
        return None

    def _subscription(self, topic: str | None, consumer: str) -> str | None:
        t = self.project.topics.get(topic or "")
        if t is None:
            return None
        for sub in t.subscriptions:
            if sub.consumer == consumer:
                return sub.name
        return t.subscriptions[0].name if t.subscriptions else None

    # ------------------------------------------------------------------ the run
    def run(self, partition: str, *, correlation_id: str | None = None, **options: Any) -> PipelineReport:
        """Publish the first phase's trigger and pump the bus until the last phase is done
        (options: :meth:`run_bound`). Every log line of the run carries its correlation id
        and partition."""
        from framework.config.logs import log_context

        corr = correlation_id or uuid.uuid4().hex[:16]
        with log_context(correlation_id=corr, partition=partition):
            return self.run_bound(partition, correlation_id=corr, **options)

    def run_bound(self, partition: str, *, select: Sequence[str] | None = None, from_phase: str | None = None,
                  entities: Sequence[str] | Mapping[str, Sequence[str]] | None = None, full: bool = False,
                  mode: str | None = None, correlation_id: str | None = None, trigger_downstream: bool = True,
                  timeout: float = 900.0, changed: dict[str, list[str]] | None = None,
                  entity_kind: str | None = None, sources_changed: Sequence[str] | None = None) -> PipelineReport:
        """``entities``: replay ids, ``{kind: [ids]}`` or a list of ``entity_kind`` ids
        (default kind: the first declared). ``sources_changed``: the landing sources edited
        since the last run (a scraper's trigger says which table it landed); processors
        reading none of them are then not asked to detect (None: every source may have changed)."""
        from framework.drive.replay import plan_from

        replay = plan_from(self.project, entities, entity_kind)
        unknown = [n for n in sources_changed or () if n not in self.project.sources]
        if unknown:
            from framework.errors import ConfigError
            from framework.manifest.diagnostics import did_you_mean

            raise ConfigError(f"sources_changed names undeclared source(s) {', '.join(unknown)}",
                              hint=did_you_mean(unknown[0], list(self.project.sources)) or "use names of processors.yaml's sources")
        names = self.project.phase_names()
        selected = set(self.graph.select(select)) if select else None
        first_selected = next((n for n in names if selected and any(self.project.processors[p].phase == n for p in selected)), None)
        start = from_phase or first_selected or names[0]
        if start not in names:
            from framework.errors import ConfigError
            from framework.manifest.diagnostics import did_you_mean

            raise ConfigError(f"unknown phase '{start}'", hint=did_you_mean(start, names) or f"phases: {', '.join(names)}")
        phases = names[names.index(start):] if trigger_downstream else [start]
        mode = mode or ("replay" if entities is not None else "full" if full else "incremental")
        corr = correlation_id or uuid.uuid4().hex[:16]
        report = PipelineReport(str(partition), corr, mode)
        wall = time.perf_counter()
        if not self._outputs_checked:  # one catalog query per run: a dropped output is rebuilt
            self.runner.check_outputs(list(self.project.processors.values()))
        self.runner.start_counts(phases, selected)  # critical inputs and gates counted once, kept by the run's writes
        self._outputs_checked = False
        ctx = RunContext(partition=str(partition), selected=selected, phases=phases, replay=replay, full=full,
                          mode=mode, trigger_downstream=trigger_downstream)
        owed(self, ctx, report)
        if replay is not None:  # the mapping pairs as they stand, before this run rewrites them
            with self.runner.lock:
                replay.prime(self.warehouse, str(partition))
        self.progress("start", {"partition": str(partition), "correlation_id": corr, "mode": mode, "phases": phases})
        self.publish_start(start, ctx, corr, changed, sources=sources_changed)
        deadline = time.monotonic() + timeout
        idle_sweeps = 0
        while time.monotonic() < deadline:
            moved = self._pump_triggers(ctx, report) + self._pump_completions(ctx)
            if moved:
                idle_sweeps = 0
                continue
            if finished(ctx) and not open_rounds(self, ctx):
                break
            if idle_sweeps >= 4:
                break
            idle_sweeps += 1
            report.fast_forward_seconds += fast_forward(self, ctx)
        report.seconds = time.perf_counter() - wall
        order = {name: i for i, name in enumerate(names)}
        report.phases.sort(key=lambda ph: order.get(ph.phase, 0))  # a late round may run a phase early
        report.waiting = list(dict.fromkeys(ctx.blocked)) + waiting(self, ctx)
        self.progress("end", report.to_dict())
        return report

    def publish_start(self, phase: str, ctx: RunContext, corr: str, changed: dict[str, list[str]] | None,
                       expected: list[str] | None = None, sources: Sequence[str] | None = None) -> None:
        from framework.orchestrator.envelope import make_envelope, serialize

        topic = self.trigger_topic(phase)
        if topic is None:
            from framework.errors import ConfigError

            raise ConfigError(f"no trigger topic for phase '{phase}' in topics.yaml",
                              hint=f"declare a topic with contract: trigger consumed by phase:{phase}")
        trigger_id = f"{ctx.mode}:{phase}:{ctx.partition}:{uuid.uuid4().hex[:8]}"
        env = make_envelope(kind="trigger", processor_name="pipectl:run", phase=phase, partition_column=self.project.partition_column, execution_id=corr, correlation_id=corr,
                            partition=ctx.partition, status="success", record_count=0, duration_seconds=0.0,
                            entities_changed=changed if changed else None, trigger_id=trigger_id, round=1,
                            metadata={"mode": ctx.mode, "source": "pipectl run",
                                      **({"sources_changed": sorted(set(sources))} if sources is not None else {}),
                                      **({"expected": sorted(expected), "reason": "code changed or left undone by an earlier run"} if expected else {})})
        self.bus.publish(topic, serialize(env), {"trigger_id": trigger_id, "partition": ctx.partition})
        ctx.published_at[phase] = time.time()

    def _pump_triggers(self, ctx: RunContext, report: PipelineReport) -> int:
        from framework.orchestrator.envelope import decode

        handled = 0
        for phase in ctx.phases:
            sub = self._subscription(self.trigger_topic(phase), f"phase:{phase}")
            if sub is None:
                continue
            for msg in self.bus.pull(sub, max_messages=10):
                handled += 1
                try:
                    env = decode(msg.data)
                except EnvelopeError as exc:  # FM 5: a poison trigger must not crash every run
                    self._reject_trigger(phase, sub, msg, exc)
                    continue
                trigger_id = env.get("trigger_id") or msg.attributes.get("trigger_id") or msg.message_id
                if not self.dedup.first_time(trigger_id):
                    log.info("phase %s: dropped duplicate trigger %s", phase, trigger_id)
                    self.bus.ack(sub, [msg.ack_id])
                    continue
                other = env.get("partition", env.get("game_date"))
                if other not in (None, ctx.partition):
                    # another partition's trigger (left by an earlier command that stopped):
                    # this command only drives its own partition, so say how to run that one
                    log.warning("phase %s: trigger %s is for partition %s, not %s; it was not run here: "
                                "run `pipectl run --date %s --from-phase %s` to process it",
                                phase, trigger_id, other, ctx.partition, other, phase)
                    self.progress("foreign_trigger", {"phase": phase, "trigger_id": trigger_id, "partition": other})
                    self.bus.ack(sub, [msg.ack_id])
                    continue
                from framework.drive.trace import record_trigger

                try:
                    record_trigger(self.store, env, sub, phase)
                    self._run_phase(phase, env, msg, ctx, report)
                except BaseException:
                    # not handled after all: un-claim the id and let the bus redeliver it
                    self.dedup.forget(trigger_id)
                    self.bus.nack(sub, [msg.ack_id])
                    raise
                self.bus.ack(sub, [msg.ack_id])
        return handled

    def _reject_trigger(self, phase: str, sub: str, msg: Any, exc: EnvelopeError) -> None:
        """An invalid trigger cannot be run: it goes to its topic's dead-letter topic (kept
        for inspection, as Pub/Sub would after the delivery limit), is logged and alerted,
        and acked. Raising instead crashed this command and every next one until the bus
        dead-lettered it."""
        topic = self.trigger_topic(phase)
        dlq = self.project.topics[topic].dead_letter_topic if topic in self.project.topics else None
        text = f"invalid trigger message {msg.message_id} on {sub} (phase {phase}): {exc.render()}"
        if dlq:
            self.bus.publish(dlq, msg.data, {**dict(msg.attributes), "rejected_by": "pipectl run",
                                             "rejected_from": sub, "error": str(exc)[:1000]})
            text += f"; moved to dead-letter topic {dlq}"
        else:
            text += "; dropped (declare a dead_letter_topic on the topic to keep such messages)"
        log.error("%s", text, extra={"progress_event": "rejected_trigger"})
        if self.alerts is not None:
            self.alerts.alert(f"invalid_trigger:{phase}", "error", text, {"subscription": sub})
        self.progress("rejected_trigger", {"phase": phase, "subscription": sub, "error": text})
        self.bus.ack(sub, [msg.ack_id])

    def _run_phase(self, phase: str, env: dict[str, Any], msg: Any, ctx: RunContext, report: PipelineReport) -> None:
        """The phase worker's part for one trigger (:func:`framework.drive.phase_run.run_phase`);
        a method so that a test can make one phase's delivery fail."""
        run_phase(self, phase, env, ctx, report)

    def _pump_completions(self, ctx: RunContext) -> int:
        handled = 0
        for phase in self.project.phases:
            t = phase.transition
            if t is None or not t.completion_topic:
                continue
            sub = self._subscription(t.completion_topic, f"orchestrator:{phase.name}")
            if sub is None:
                continue
            for msg in self.bus.pull(sub, max_messages=50):
                handled += 1
                ours = envelope_partition(msg.data) in (None, ctx.partition)
                try:
                    decision = self.orchestrator.handle_completion(msg.data)
                except QualityGateError as exc:
                    # recorded in the ledger and alerted by the orchestrator; the transition
                    # stays blocked until upstream data is fixed and re-run (FM 22: loud).
                    # Another partition's gate is that partition's business (its status)
                    if ours:
                        ctx.blocked.append(exc.render())
                    else:
                        log.warning("%s", exc.render())
                    self.bus.ack(sub, [msg.ack_id])
                    self.progress("gate_blocked", {"phase": phase.name, "error": exc.render()})
                    continue
                except PipectlError as exc:  # publish failed / invalid envelope: redeliver, then dead-letter
                    log.error("orchestrator could not handle a completion on %s: %s", sub, exc.render())
                    if ours:
                        ctx.blocked.append(exc.render())
                    self.bus.nack(sub, [msg.ack_id])
                    continue
                self.bus.ack(sub, [msg.ack_id])
                self.progress("completion", {"phase": phase.name, "decision": _decision_text(decision)})
        return handled
