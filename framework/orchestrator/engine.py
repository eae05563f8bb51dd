"""The generic orchestrator: one engine for every phase transition of the manifest.

``handle_completion`` = validate -> resolve identity -> store big entity sets -> ONE
transaction (record + evaluate + pending trigger) -> alerts -> quality gates -> publish ->
mark published. Every side effect happens after the commit, and every pending trigger is
retried by the next delivery for the partition or by :meth:`Orchestrator.sweep`, under the
same deterministic trigger id, so a crash at any step loses nothing and consumers that
drop seen trigger ids (:class:`TriggerDedup`) see it exactly once.
"""
from __future__ import annotations

import logging
import time
from typing import Any, Callable, Mapping

from framework.errors import BackendError, EnvelopeError, PipectlError, QualityGateError
from framework.manifest.model import Project, QualityGate, Transition
from framework.orchestrator import entities as ent
from framework.orchestrator import ledger as lg
from framework.alerts import Alerter, LogSink
from framework.orchestrator.decision import Decision
from framework.orchestrator.envelope import COMPLETE_STATUSES, decode, entity_counts, make_envelope, now_iso, serialize
from framework.orchestrator.identity import ContractViolation, UnknownProcessor, check_contract, resolve, transition_of

GateChecker = Callable[[QualityGate, str], int]
log = logging.getLogger("pipectl.orchestrator")


class Orchestrator:
    """Tracks completions per (transition, partition) and publishes each trigger once."""

    def __init__(self, project: Project, store: Any, bus: Any, alerts: Alerter | None = None,
                 clock: Callable[[], float] = time.time, gate_checker: GateChecker | None = None,
                 dead_letter_topic: str | None = None, publish_grace: float = 30.0, stall_seconds: float = 4 * 3600.0):
        self.project = project
        self.store = store
        self.bus = bus
        self.alerts: Alerter = alerts or LogSink(log)  # every alert on pipectl.orchestrator: never silent
        self.clock = clock
        self.gate_checker = gate_checker
        self.dead_letter_topic = dead_letter_topic
        self.publish_grace = publish_grace
        self.stall_seconds = stall_seconds
        self._transitions = {t.name: t for t in project.transitions()}
        self._graph: Any = None

    # -- public API ---------------------------------------------------------------------
    def handle_completion(self, message: bytes | str | Mapping[str, Any]) -> Decision:
        """Process one completion envelope. Raises QualityGateError when a gate blocks the
        trigger, BackendError when the trigger could not be published (nack and redeliver:
        the pending trigger is retried), EnvelopeError for an invalid message when no
        dead-letter topic is configured."""
        try:
            env = decode(message)
            if env["kind"] != "completion":
                raise EnvelopeError(f"expected a completion envelope, got kind {env['kind']!r} from {env['processor_name']!r}")
            proc = resolve(self.project, env["processor_name"])
            check_contract(self.project, env, proc)
        except EnvelopeError as exc:
            return self._reject(message, exc)
        transition = transition_of(self.project, proc)
        if transition is None:
            return Decision("ignored", None, env["partition"], reason=f"phase {proc.phase} has no transition", processor=proc.name)
        ctx = self.ledger_context(transition, env["partition"])
        ok = env["status"] in COMPLETE_STATUSES
        ckey = lg.completion_key(transition, env["partition"], proc.name, env["execution_id"])
        entities = ent.compact(self.store, f"cmp:{ckey}", env.get("entities_changed")) if ok else {}
        counts = entity_counts(entities)
        changed = env["status"] in ("success", "partial") and (counts is None or any(counts.values()))
        now = self.clock()
        step = self.store.run_transaction(lambda txn: lg.record_completion(txn, ctx, env, proc.name, entities, changed, now))
        try:
            return self.after_commit(ctx, step, now, processor=proc.name)
        except BackendError as exc:  # the caller nacks: say why, for the dead-letter listing
            self._record_delivery_error(message, exc)
            raise

    def sweep(self, now: float | None = None, partition: str | None = None) -> list[Decision]:
        """Evaluate every open partition (or only ``partition``) without a new message
        (deadlines, tiers, debounce, pending triggers). See :mod:`framework.orchestrator.sweeper`."""
        from framework.orchestrator.sweeper import sweep

        return sweep(self, now, partition=partition)

    def status(self, partition: str | None = None) -> list[Any]:
        from framework.orchestrator.status import collect

        return collect(self, partition)

    def transition(self, name: str) -> Transition | None:
        """The transition of that name, or None when the manifest no longer declares it."""
        return self._transitions.get(name)

    # -- the commit seam ------------------------------------------------------------------
    # A ledger step is two halves: one transaction on the ledger (the caller runs it with
    # ``store.run_transaction`` and a :mod:`framework.orchestrator.ledger` function over the
    # context), then every side effect after the commit (``after_commit``). handle_completion
    # and the sweeper both use this seam; nothing else may alert or publish, and nothing may
    # do either inside the transaction (a retried transaction must not act twice).
    def ledger_context(self, transition: Transition, partition: str) -> lg.Context:
        """What the ledger functions need for one (transition, partition): the manifest, the
        dispatch rule, the publish lease and the stall threshold."""
        return lg.Context(self.project, transition, partition, self._dispatch, self.publish_grace, self.stall_seconds)

    def after_commit(self, ctx: lg.Context, step: lg.Step, now: float, processor: str | None = None) -> Decision:
        """The side effects of a committed ledger step, in order: its alerts, its pending
        triggers published (older first), then the quality gates when the step needs them
        (a pass re-evaluates the ledger and publishes the trigger it writes). Raises
        QualityGateError when a gate blocks (recorded and alerted first) and BackendError
        when a publish fails (the trigger stays pending; the next delivery or sweep retries)."""
        self._alert(step.alerts)
        published = [tid for tid in step.publish if self._publish(ctx, tid, now)]  # older pending triggers first
        if step.gates_needed:
            failures = self._run_gates(ctx)
            if failures:
                gate_step = self.store.run_transaction(lambda txn: lg.record_gate_failure(txn, ctx, step.round or 0, failures, now))
                self._alert(gate_step.alerts)
                raise QualityGateError(
                    f"{ctx.transition.name} partition {ctx.partition}: quality gate failed, trigger not written: " + "; ".join(failures),
                    hint="fix the upstream data and re-run it; the next completion or `pipectl sweep` re-checks the gate",
                )
            passed = self.store.run_transaction(lambda txn: lg.reevaluate(txn, ctx, now, gates_passed=True))
            self._alert(passed.alerts)
            done = set(step.publish)
            step = lg.Step(passed.action, passed.round or step.round, passed.reason, passed.trigger_id,
                           [tid for tid in passed.publish if tid not in done])
            published += [tid for tid in step.publish if self._publish(ctx, tid, now)]
        return Decision(step.action, ctx.transition.name, ctx.partition, step.round, step.trigger_id, tuple(published), step.reason, processor)

    # -- internals ------------------------------------------------------------------------
    def _dispatch(self, transition: Transition, changed: set[str], round_no: int) -> list[str]:
        """Processors of the next phase that this round starts: all of them in round 1, else
        those downstream (in the graph) of a processor whose output changed."""
        if transition.target_phase is None:
            return []
        target = self.project.phase(transition.target_phase)
        full = list(target.transition.expected) if target.transition else [p.name for p in self.project.processors_in(target.name)]
        if round_no == 1:
            return sorted(full)
        if self._graph is None:
            from framework.graph.graph import PipelineGraph

            self._graph = PipelineGraph(self.project)
        reached: set[str] = set()
        for name in changed:
            if name in self._graph:
                reached |= self._graph.downstream(name)
        return sorted(n for n in full if n in reached)

    def _alert(self, alerts: list[tuple[str, str, str, dict]]) -> None:
        for signature, severity, message, context in alerts:
            self.alerts.alert(signature, severity, message, context)

    def _reject(self, message: Any, exc: EnvelopeError) -> Decision:
        """Invalid or unknown: alert, then dead-letter (or raise so the bus dead-letters)."""
        kind = ("unknown_processor" if isinstance(exc, UnknownProcessor)
                else "contract_violation" if isinstance(exc, ContractViolation) else "invalid_envelope")
        self.alerts.alert(f"orchestrator_{kind}", "error", exc.render(), {"dead_letter_topic": self.dead_letter_topic})
        if self.dead_letter_topic is None:
            self._record_delivery_error(message, exc)
            raise exc
        data = message if isinstance(message, bytes) else (message.encode() if isinstance(message, str) else _raw_json(message))
        self.bus.publish(self.dead_letter_topic, data, {"error": exc.render()[:1024], "rejected_by": "orchestrator"})
        return Decision("rejected", reason=exc.render())

    def _record_delivery_error(self, message: Any, exc: PipectlError) -> None:
        """Keep why this message failed (``pipectl bus dead-letters`` shows it if the bus
        gives up on it). Never hides the original error."""
        from framework.orchestrator.delivery_errors import record_delivery_error

        data = message if isinstance(message, bytes) else (message.encode() if isinstance(message, str) else _raw_json(message))
        try:
            record_delivery_error(self.store, data, exc.render())
            exc.delivery_error_recorded = True  # type: ignore[attr-defined]
        except PipectlError as err:
            log.error("could not record the delivery error of a completion: %s", err.render())

    def _run_gates(self, ctx: lg.Context) -> list[str]:
        failures = []
        for gate in ctx.transition.quality_gates:
            if self.gate_checker is None:
                failures.append(f"{gate.name}: no gate checker configured to count rows of {gate.processor}")
                continue
            try:
                rows = int(self.gate_checker(gate, ctx.partition))
            except BackendError as exc:  # an unverifiable gate blocks (fail closed), alerted as a gate failure
                failures.append(f"{gate.name}: rows of {gate.processor} for {ctx.partition} could not be checked: {exc.message}")
                continue
            if rows < gate.min_rows:
                proc = self.project.resolve_processor(gate.processor)
                table = proc.output_table if proc else gate.processor
                failures.append(f"{gate.name}: {table} has {rows} row(s) for {ctx.partition}, needs at least {gate.min_rows}")
        return failures

    def _publish(self, ctx: lg.Context, tid: str, now: float) -> bool:
        """Publish a pending trigger, then mark it published. False if already published."""
        trig = self.store.get(lg.TRIGGERS, tid)
        if trig is None or trig["state"] == "published":
            self.store.run_transaction(lambda txn: lg.mark_published(txn, ctx, tid, now, sent=False))
            return False
        try:
            data = serialize(self.trigger_envelope(trig))
            attributes = {"kind": "trigger", "trigger_id": tid, "transition": trig["transition"],
                          "partition": trig["partition"], "round": str(trig["round"])}
            self.bus.publish(trig["topic"], data, attributes)
        except Exception as exc:  # any publish failure: alert, keep pending, let the caller nack
            self.store.run_transaction(lambda txn: lg.retry_soon(txn, ctx, tid, now))
            self.alerts.alert(f"orchestrator_publish_failed:{ctx.transition.name}", "error",
                              f"trigger {tid} for {ctx.transition.name} partition {ctx.partition} could not be published to "
                              f"{trig['topic']}: {exc}; it stays pending and is retried", {"trigger_id": tid, "partition": ctx.partition})
            raise BackendError(f"publishing trigger {tid} to topic {trig['topic']} failed: {exc}",
                               hint="the trigger stays pending; redelivery or `pipectl sweep` publishes it") from exc
        self.store.run_transaction(lambda txn: lg.mark_published(txn, ctx, tid, self.clock()))
        return True

    def trigger_envelope(self, trig: Mapping[str, Any]) -> dict[str, Any]:
        """The trigger envelope of a trigger document (deterministic for a given document)."""
        records = [self.store.get(lg.COMPLETIONS, key) for key in trig["completion_keys"]]
        ok = [r for r in records if r is not None and r["status"] in COMPLETE_STATUSES]
        aggregated = ent.aggregate(self.store, [r["entities"] for r in ok if r["status"] != "no_data"])
        entities = ent.compact(self.store, f"trg:{trig['trigger_id']}", aggregated, limit=ent.TRIGGER_INLINE_LIMIT)
        root = trig["root_correlation_id"] or trig["parent_correlation_id"] or trig["trigger_id"]
        return make_envelope(
            kind="trigger", processor_name=f"orchestrator:{trig['source_phase']}", phase=trig["target_phase"] or "end",
            execution_id=trig["trigger_id"], correlation_id=root, parent_correlation_id=trig["parent_correlation_id"],
            parent_execution_id=trig["parent_execution_id"], root_correlation_id=root, partition=trig["partition"],
            partition_column=trig.get("partition_column"), status="success" if not trig["missing"] else "partial",
            record_count=sum(r["record_count"] for r in ok), duration_seconds=max(0.0, trig["created_at"] - (trig["first_at"] or trig["created_at"])),
            entities_changed=entities, trigger_id=trig["trigger_id"], round=trig["round"], timestamp=now_iso(self.clock()),
            metadata={"transition": trig["transition"], "source_phase": trig["source_phase"], "target_phase": trig["target_phase"],
                      "expected": trig["dispatched"], "completed": trig["completed"], "missing": trig["missing"],
                      "reason": trig["reason"], "full_batch": entities is None},
        )


def _raw_json(message: Any) -> bytes:
    import json

    return json.dumps(message, default=str).encode()


class TriggerDedup:
    """Consumer-side dedup: ``first_time(trigger_id)`` is True exactly once per id.

    Claim before processing; if processing then fails, ``forget`` the id so the redelivered
    trigger is processed again."""

    COLLECTION = "orch_trigger_dedup"

    def __init__(self, store: Any, clock: Callable[[], float] = time.time):
        self.store = store
        self.clock = clock

    def first_time(self, trigger_id: str) -> bool:
        def claim(txn: Any) -> bool:
            if txn.get(self.COLLECTION, trigger_id) is not None:
                return False
            txn.set(self.COLLECTION, trigger_id, {"at": self.clock()})
            return True

        return bool(self.store.run_transaction(claim))

    def forget(self, trigger_id: str) -> None:
        self.store.run_transaction(lambda txn: txn.delete(self.COLLECTION, trigger_id))
