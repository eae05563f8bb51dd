"""The sweeper: everything that must happen without a new message.

Production checked deadlines only when a message arrived, so a phase whose processors
stopped reporting waited forever (FAILURE-MODES 14, 24). ``sweep`` visits every *active*
ledger (an open round or a pending trigger) and, for each, re-evaluates the rule at ``now``
(deadlines, tiered timeouts, debounce windows, stall alerts) and publishes pending triggers
whose publish lease expired (a process died between commit and publish). A scheduler runs
``pipectl sweep`` every minute or so; on Google Cloud a Cloud Scheduler job managed by
``pipectl apply`` triggers the function's ``handle_sweep`` entry point.

One partition's failure never stops the sweep of the others; the failures are alerted as
they happen and, for quality gates, re-raised together at the end so the scheduler's run
fails visibly (a blocking gate is never swallowed, FAILURE-MODES 22).
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from framework.errors import BackendError, QualityGateError
from framework.orchestrator import ledger as lg
from framework.orchestrator.decision import Decision

if TYPE_CHECKING:
    from framework.orchestrator.engine import Orchestrator


def sweep(orch: "Orchestrator", now: float | None = None, partition: str | None = None) -> list[Decision]:
    """One pass (over ``partition`` only, when given: `pipectl run` settles its own partition
    and must not report another one's blocked gate); raises the quality-gate failures
    together at the end (``pipectl sweep`` exits 1 so a cron job fails visibly)."""
    decisions, gate_errors = sweep_pass(orch, now, partition)
    if gate_errors:
        raise QualityGateError("; ".join(e.message for e in gate_errors), hint=gate_errors[0].hint)
    return decisions


def sweep_report(orch: "Orchestrator", now: float | None = None) -> dict:
    """One pass as a JSON-able report, gate failures included rather than raised: what the
    scheduled Cloud Function logs (they are alerted already; the next tick re-checks them)."""
    decisions, gate_errors = sweep_pass(orch, now)
    return {"decisions": [d.to_dict() for d in decisions],
            "published": sorted(tid for d in decisions for tid in d.published),
            "gate_failures": [e.message for e in gate_errors]}


def sweep_pass(orch: "Orchestrator", now: float | None = None,
               partition: str | None = None) -> tuple[list[Decision], list[QualityGateError]]:
    now = orch.clock() if now is None else now
    decisions: list[Decision] = []
    gate_errors: list[QualityGateError] = []
    where = {"active": True} if partition is None else {"active": True, "partition": partition}
    for key, doc in orch.store.query(lg.LEDGER, where):
        transition = orch.transition(doc["transition"])
        if transition is None:
            orch.alerts.alert("orchestrator_unknown_transition", "error",
                              f"ledger {key} belongs to transition {doc['transition']!r}, which the manifest no longer declares",
                              {"ledger": key})
            decisions.append(Decision("ignored", doc["transition"], doc["partition"], reason="transition no longer declared"))
            continue
        ctx = orch.ledger_context(transition, doc["partition"])
        step = orch.store.run_transaction(lambda txn, ctx=ctx: lg.reevaluate(txn, ctx, now))
        try:
            decisions.append(orch.after_commit(ctx, step, now))
        except QualityGateError as exc:
            gate_errors.append(exc)
            decisions.append(Decision("gate_failed", transition.name, doc["partition"], step.round, reason=exc.message))
        except BackendError as exc:  # publish failed: already alerted, trigger stays pending
            decisions.append(Decision("publish_failed", transition.name, doc["partition"], step.round, step.trigger_id, reason=exc.message))
    return decisions, gate_errors
