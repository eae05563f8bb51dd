"""Ledger documents and the transactional steps of the orchestrator.

Every function taking a ``txn`` runs inside ONE StateStore transaction and follows the
Firestore rule: all reads first, then writes. Nothing here publishes or alerts; the
functions return a :class:`Step` saying what to do *after* the commit (publish these
pending triggers, send these alerts). That ordering is the whole point (FAILURE-MODES
10, 11): the completion, the decision and the pending trigger are committed together,
the publish happens after, and a pending trigger survives any crash until it is marked
published.

Documents (collection -> key):
- ``orch_ledger`` -> ``<transition>|<partition>``: rounds, run keys, pending triggers;
- ``orch_completions`` -> ``<transition>|<partition>|<processor>|<execution_id>``:
  one immutable record per run (the idempotency key; written only inside the txn);
- ``orch_triggers`` -> ``<trigger_id>``: the pending/published trigger and what it carries;
- ``orch_rounds`` -> ``<transition>|<partition>|<round>``: rounds archived out of the ledger
  document so it stays small (:mod:`framework.orchestrator.compaction`).
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

from framework.manifest.model import Project, Transition
from framework.orchestrator import compaction, policy
from framework.orchestrator.envelope import COMPLETE_STATUSES

LEDGER = "orch_ledger"
COMPLETIONS = "orch_completions"
TRIGGERS = "orch_triggers"


def ledger_key(transition: Transition, partition: str) -> str:
    return f"{transition.name}|{partition}"


def completion_key(transition: Transition, partition: str, processor: str, execution_id: str) -> str:
    return f"{ledger_key(transition, partition)}|{processor}|{execution_id}"


def trigger_id(transition: Transition, partition: str, round_no: int) -> str:
    """Deterministic: the same (transition, partition, round) always yields the same id, in
    every process, so a republished trigger is recognised downstream as the same one."""
    digest = hashlib.sha256(f"{transition.name}|{partition}|{round_no}".encode()).hexdigest()[:24]
    return f"trg-{digest}"


@dataclass
class Context:
    """What the ledger steps need besides the transaction."""

    project: Project
    transition: Transition
    partition: str
    dispatch: Callable[[Transition, set[str], int], list[str]]  # (transition, changed processors, round) -> next phase's processors
    publish_grace: float = 30.0  # others republish a pending trigger only after this many seconds
    stall_seconds: float = 4 * 3600.0  # alert when a round without deadline waits this long

    @property
    def key(self) -> str:
        return ledger_key(self.transition, self.partition)


@dataclass
class Step:
    """Outcome of one transaction: what happened and what to do after the commit."""

    action: str
    round: int | None = None
    reason: str = ""
    trigger_id: str | None = None
    publish: list[str] = field(default_factory=list)
    alerts: list[tuple[str, str, str, dict]] = field(default_factory=list)
    gates_needed: bool = False
    trigger_doc: dict[str, Any] | None = None  # written by _finish in the same transaction


def new_ledger(ctx: Context) -> dict[str, Any]:
    return {"transition": ctx.transition.name, "partition": ctx.partition, "phase": ctx.transition.source_phase,
            "active": False, "round": 0, "open_round": None, "run_keys": {}, "pending": {}, "rounds": {}}


def round_view(transition: Transition, rnd: Mapping[str, Any]) -> policy.RoundView:
    """What the trigger rule sees of a round document (also read by status and health)."""
    procs = rnd["processors"]
    completed = frozenset(n for n, p in procs.items() if p["ok"])
    failed = frozenset(n for n, p in procs.items() if not p["ok"])
    expected = frozenset(rnd["expected"]) if not rnd["collecting"] else completed | failed
    return policy.RoundView(expected, completed, failed, rnd.get("first_at"), rnd["collecting"])


def _alert_once(step: Step, rnd: dict[str, Any], ctx: Context, kind: str, severity: str, message: str) -> None:
    if kind in rnd["alerted"]:
        return
    rnd["alerted"].append(kind)
    step.alerts.append((f"orchestrator_{kind.split(':')[0]}:{ctx.transition.name}", severity, message,
                        {"transition": ctx.transition.name, "partition": ctx.partition, "round": rnd["number"]}))


def _open_round(ledger: dict[str, Any], ctx: Context, dispatched: list[str] | None, now: float) -> dict[str, Any]:
    number = ledger["round"] + 1
    if dispatched is not None:
        expected, collecting = list(dispatched), False
    elif number == 1 and ctx.transition.expected:
        expected, collecting = list(ctx.transition.expected), False
    else:
        expected, collecting = [], True
    rnd = {"number": number, "opened_at": now, "first_at": now, "collecting": collecting, "expected": expected,
           "processors": {}, "completions": [], "late": [], "state": "open", "verdict": "wait", "reason": "opened",
           "trigger_id": None, "root_correlation_id": None, "last_correlation_id": None, "last_execution_id": None,
           "alerted": [], "gate_failures": []}
    ledger["round"] = number
    ledger["open_round"] = number
    ledger["rounds"][str(number)] = rnd
    return rnd


def _due(ledger: Mapping[str, Any], now: float) -> list[str]:
    return sorted(tid for tid, after in ledger["pending"].items() if after <= now)


def evaluate_open_round(ledger: dict[str, Any], ctx: Context, now: float, step: Step, gates_passed: bool = False) -> bool:
    """Apply the trigger rule to the open round; mutate ``ledger`` (and return the trigger
    document to write via ``step``). Returns True when the ledger changed."""
    number = ledger["open_round"]
    if number is None:
        return False
    rnd = ledger["rounds"][str(number)]
    t = ctx.transition
    verdict = policy.evaluate(t, round_view(t, rnd), now)
    changed = (rnd["verdict"], rnd["reason"]) != (verdict.outcome, verdict.reason)
    alerted = len(rnd["alerted"])
    rnd["verdict"], rnd["reason"] = verdict.outcome, verdict.reason
    step.round, step.reason = number, verdict.reason
    where = f"{t.name} partition {ctx.partition} round {number}"
    if verdict.outcome == "blocked":
        for name in verdict.critical_failed:
            _alert_once(step, rnd, ctx, f"critical_failed:{name}", "critical",
                        f"{where}: critical processor {name} failed; the transition is blocked until it succeeds")
        step.action = "blocked"
        return changed or len(rnd["alerted"]) != alerted
    if verdict.outcome == "expired":
        _alert_once(step, rnd, ctx, "deadline_expired", "critical", f"{where}: {verdict.reason}")
        step.action = "expired"
        return changed or len(rnd["alerted"]) != alerted
    if verdict.outcome == "wait":
        waited = now - (rnd["first_at"] or now)
        if t.deadline_seconds is None and waited >= ctx.stall_seconds:
            _alert_once(step, rnd, ctx, "stalled", "error", f"{where}: waiting for {int(waited)}s with no deadline: {verdict.reason}")
        step.action = "waiting"
        return changed or len(rnd["alerted"]) != alerted
    # fire
    if verdict.deadline_passed:
        _alert_once(step, rnd, ctx, "deadline", "error", f"{where}: {verdict.reason}")
    if t.mode == "monitor" or not t.trigger_topic:
        rnd["state"] = "monitored"
        rnd["reason"] = f"{verdict.reason} (monitor mode: recorded, not published)" if t.mode == "monitor" else \
            f"{verdict.reason} (no trigger_topic: nothing to publish)"
        ledger["open_round"] = None
        step.action = "monitored"
        return True
    if t.quality_gates and not gates_passed:
        step.action, step.gates_needed = "gates_needed", True
        return changed
    tid = trigger_id(t, ctx.partition, number)
    changed_procs = {n for n, p in rnd["processors"].items() if p["ok"] and p.get("changed", True)}
    completed = sorted(n for n, p in rnd["processors"].items() if p["ok"])
    rnd["state"], rnd["trigger_id"] = "triggered", tid
    rnd["triggered_at"] = now
    ledger["open_round"] = None
    ledger["pending"][tid] = now + ctx.publish_grace
    step.action, step.trigger_id = "triggered", tid
    step.publish.append(tid)
    step.trigger_doc = {
        "trigger_id": tid, "transition": t.name, "source_phase": t.source_phase, "target_phase": t.target_phase,
        "topic": t.trigger_topic, "partition": ctx.partition, "partition_column": ctx.project.partition_column,
        "round": number, "state": "pending", "created_at": now, "published_at": None, "publish_count": 0,
        "completion_keys": [c for c in rnd["completions"]], "completed": completed,
        "missing": list(verdict.missing), "dispatched": ctx.dispatch(t, changed_procs, number), "reason": verdict.reason,
        "parent_correlation_id": rnd["last_correlation_id"], "parent_execution_id": rnd["last_execution_id"],
        "root_correlation_id": rnd["root_correlation_id"], "first_at": rnd["first_at"],
    }
    return True


def _finish(txn: Any, ledger: dict[str, Any], ctx: Context, step: Step, now: float) -> None:
    ledger["active"] = ledger["open_round"] is not None or bool(ledger["pending"])
    compaction.compact(txn, ledger, ctx.key)  # old rounds to documents of their own: bounded size
    txn.set(LEDGER, ctx.key, ledger)
    doc = step.trigger_doc
    if doc is not None:
        txn.set(TRIGGERS, doc["trigger_id"], doc)
    for tid in _due(ledger, now):
        if tid not in step.publish:
            step.publish.append(tid)


def record_completion(txn: Any, ctx: Context, env: Mapping[str, Any], processor: str, entities: Any,
                      changed: bool, now: float) -> Step:
    """Record one completion and evaluate the rule, in the caller's transaction."""
    ckey = completion_key(ctx.transition, ctx.partition, processor, env["execution_id"])
    # -- reads ------------------------------------------------------------------------
    ledger = txn.get(LEDGER, ctx.key) or new_ledger(ctx)
    existing = txn.get(COMPLETIONS, ckey)
    run_key = f"t:{env['trigger_id']}" if env.get("trigger_id") else f"c:{env['correlation_id']}"
    dispatch_doc = archived = None
    if existing is None and env.get("trigger_id") and run_key not in ledger["run_keys"]:
        dispatch_doc = txn.get(TRIGGERS, env["trigger_id"])
    if existing is None and run_key not in ledger["run_keys"] and ledger.get("archived_through"):
        archived = txn.get(compaction.ARCHIVED_RUN_KEYS, compaction.archived_run_key(ctx.key, run_key))
    step = Step("recorded")
    # -- decide (no more reads below) ---------------------------------------------------
    if existing is not None:
        step.action, step.round = "duplicate", existing["round"]
        step.reason = f"duplicate of {processor} execution {env['execution_id']}: nothing changed"
        changed = evaluate_open_round(ledger, ctx, now, step)
        if step.action in ("waiting", "idle", "recorded"):
            step.action, step.round = "duplicate", existing["round"]
            step.reason = f"duplicate of {processor} execution {env['execution_id']}: nothing changed; {step.reason}"
        if changed or step.publish:
            _finish(txn, ledger, ctx, step, now)
        else:
            step.publish.extend(_due(ledger, now))
        return step
    ok = env["status"] in COMPLETE_STATUSES
    number = ledger["run_keys"].get(run_key)
    if number is None and archived is not None:
        number = int(archived["round"])  # a round archived by compaction: closed long ago
    known = ledger["rounds"].get(str(number)) if number is not None else None
    closed = (known is not None and known["state"] != "open") or (known is None and archived is not None)
    late_of = number if closed and ok and changed else None  # late, but its changes must still travel
    if closed and late_of is None:
        if known is not None:
            known["late"].append(ckey)
        step.action, step.round = "late", number
        step.reason = (f"late completion of {processor} for round {number}, which already "
                       f"{known['state'] if known else 'closed (archived)'}; recorded (it changed nothing), no new round opened")
        step.alerts.append((f"orchestrator_late_completion:{ctx.transition.name}", "warning",
                            f"{ctx.transition.name} partition {ctx.partition}: {step.reason}",
                            {"transition": ctx.transition.name, "partition": ctx.partition, "round": number, "processor": processor}))
        late = True
    else:
        late = False
        dispatched = dispatch_doc.get("dispatched") if dispatch_doc and late_of is None else None
        if ledger["open_round"] is None:
            rnd = _open_round(ledger, ctx, dispatched, now)
        else:
            rnd = ledger["rounds"][str(ledger["open_round"])]
            if dispatched is not None:
                rnd["expected"] = sorted(set(rnd["expected"]) | set(dispatched)) if not rnd["collecting"] else list(dispatched)
                rnd["collecting"] = False
        declared = (env.get("metadata") or {}).get("round_processors") if late_of is None else None
        if isinstance(declared, list) and declared:
            # the phase worker says what it runs for this trigger (more than dispatched after a
            # code change or with --full): the round waits for every one of them
            rnd["expected"] = sorted(set(rnd["expected"]) | {str(n) for n in declared}) if not rnd["collecting"] \
                else sorted({str(n) for n in declared})
            rnd["collecting"] = False
        ledger["run_keys"][run_key] = rnd["number"]
        rnd["completions"].append(ckey)
        rnd["root_correlation_id"] = rnd["root_correlation_id"] or env.get("root_correlation_id") or env["correlation_id"]
        rnd["last_correlation_id"], rnd["last_execution_id"] = env["correlation_id"], env["execution_id"]
        prev = rnd["processors"].get(processor)
        attempts = (prev["attempts"] if prev else 0) + 1
        if ok or prev is None or not prev["ok"]:
            rnd["processors"][processor] = {"status": env["status"], "ok": ok, "changed": ok and changed,
                                            "execution_id": env["execution_id"], "at": now, "attempts": attempts}
        else:
            prev["attempts"] = attempts
        if not ok:
            critical = processor in ctx.transition.critical
            step.alerts.append((f"orchestrator_processor_failed:{ctx.transition.name}", "critical" if critical else "warning",
                                f"{ctx.transition.name} partition {ctx.partition} round {rnd['number']}: processor {processor} "
                                f"failed ({env.get('error_type')}: {env.get('error_message')})",
                                {"transition": ctx.transition.name, "partition": ctx.partition, "round": rnd["number"],
                                 "processor": processor, "critical": critical}))
        step.round = rnd["number"]
        evaluate_open_round(ledger, ctx, now, step)
        if step.action == "waiting":
            step.action = "recorded"
        if late_of is not None:
            step.alerts.append((f"orchestrator_late_completion:{ctx.transition.name}", "warning",
                                f"{ctx.transition.name} partition {ctx.partition}: late completion of {processor} for round "
                                f"{late_of}, which already fired; its changes go out with round {rnd['number']}",
                                {"transition": ctx.transition.name, "partition": ctx.partition, "round": rnd["number"],
                                 "late_of": late_of, "processor": processor}))
    record = {"ledger": ctx.key, "round": number if late else rnd["number"], "processor": processor, "execution_id": env["execution_id"],
              "status": env["status"], "record_count": env.get("record_count", 0), "correlation_id": env["correlation_id"],
              "root_correlation_id": env.get("root_correlation_id"), "trigger_id": env.get("trigger_id"),
              "error_type": env.get("error_type"), "error_message": env.get("error_message"),
              "entities": entities if ok else {}, "late": late, "late_of": late_of, "at": now, "run_key": run_key}
    txn.set(COMPLETIONS, ckey, record)
    _finish(txn, ledger, ctx, step, now)
    return step


def reevaluate(txn: Any, ctx: Context, now: float, gates_passed: bool = False) -> Step:
    """Evaluate the open round with no new message (sweeper, quality gates passed)."""
    ledger = txn.get(LEDGER, ctx.key)
    step = Step("idle")
    if ledger is None:
        return step
    if evaluate_open_round(ledger, ctx, now, step, gates_passed=gates_passed):
        _finish(txn, ledger, ctx, step, now)
    else:
        step.publish.extend(_due(ledger, now))
    return step


def record_gate_failure(txn: Any, ctx: Context, round_no: int, failures: list[str], now: float) -> Step:
    ledger = txn.get(LEDGER, ctx.key)
    step = Step("gate_failed", round=round_no, reason="; ".join(failures))
    if ledger is None or str(round_no) not in ledger["rounds"]:
        return step
    rnd = ledger["rounds"][str(round_no)]
    rnd["gate_failures"] = failures
    rnd["verdict"], rnd["reason"] = "gate_failed", "quality gate failed: " + "; ".join(failures)
    _alert_once(step, rnd, ctx, "quality_gate", "critical",
                f"{ctx.transition.name} partition {ctx.partition} round {round_no}: quality gate failed: {'; '.join(failures)}")
    _finish(txn, ledger, ctx, step, now)
    return step


def mark_published(txn: Any, ctx: Context, tid: str, now: float, sent: bool = True) -> None:
    """Mark a trigger published (``sent``: this process just published it) and drop it
    from the ledger's pending set."""
    ledger = txn.get(LEDGER, ctx.key)
    trig = txn.get(TRIGGERS, tid)
    if trig is not None:
        trig["state"], trig["publish_count"] = "published", trig.get("publish_count", 0) + int(sent)
        trig["published_at"] = trig.get("published_at") or now
    if ledger is not None:
        ledger["pending"].pop(tid, None)
        ledger["active"] = ledger["open_round"] is not None or bool(ledger["pending"])
        txn.set(LEDGER, ctx.key, ledger)
    if trig is not None:
        txn.set(TRIGGERS, tid, trig)


def retry_soon(txn: Any, ctx: Context, tid: str, now: float) -> None:
    """After a failed publish: let the next delivery or sweep retry at once."""
    ledger = txn.get(LEDGER, ctx.key)
    if ledger is not None and tid in ledger["pending"]:
        ledger["pending"][tid] = now
        txn.set(LEDGER, ctx.key, ledger)
