"""Trigger rules as pure functions of (transition, round state, now).

No I/O and no clock here: the engine passes ``now``. That makes every rule unit-testable
and lets the sweeper evaluate deadlines and tiered timeouts with no new message
(FAILURE-MODES 14, 24). Time is measured from the first completion of the round.

Outcomes:
- ``fire``: write the trigger (the engine still runs the quality gates first);
- ``wait``: not yet; ``reason`` says for what;
- ``blocked``: a critical processor failed; the transition cannot fire until it succeeds;
- ``expired``: the hard deadline passed and the round cannot fire (a critical processor
  is missing or nothing completed).

Deadline choice (documented in docs/orchestrator.md): when the hard deadline passes, the
round triggers with what is complete if every critical processor of the round completed
and at least one expected processor completed; the engine alerts either way.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

from framework.manifest.model import Transition


@dataclass(frozen=True)
class RoundView:
    """What a rule needs to know about one round of one (transition, partition)."""

    expected: frozenset[str]
    completed: frozenset[str]  # processors with at least one finished (non-failed) run
    failed: frozenset[str]  # processors whose runs in this round all failed
    first_at: float | None  # orchestrator clock at the round's first completion
    collecting: bool = False  # expected set = whoever reports, closed by the debounce window


@dataclass(frozen=True)
class Verdict:
    """What a transition's policy says now (fire, wait, blocked, expired) and why, for the ledger and status."""

    outcome: str  # fire | wait | blocked | expired
    reason: str
    missing: tuple[str, ...] = ()
    deadline_passed: bool = False
    critical_failed: tuple[str, ...] = field(default=())

    @property
    def fires(self) -> bool:
        return self.outcome == "fire"


def _names(items: frozenset[str] | set[str]) -> str:
    return ", ".join(sorted(items)) or "-"


def evaluate(transition: Transition, view: RoundView, now: float) -> Verdict:
    """Decide whether the round's trigger fires now. Pure: same inputs, same verdict."""
    expected = view.expected
    done = view.completed & expected if not view.collecting else view.completed
    missing = tuple(sorted(expected - view.completed))
    critical = frozenset(transition.critical) & expected
    critical_failed = tuple(sorted((critical & view.failed) - view.completed))
    critical_missing = critical - view.completed
    elapsed = (now - view.first_at) if view.first_at is not None else 0.0
    deadline = transition.deadline_seconds
    deadline_passed = deadline is not None and view.first_at is not None and elapsed >= deadline

    if critical_failed:
        return Verdict("blocked", f"critical processor(s) failed: {_names(set(critical_failed))}", missing, deadline_passed, critical_failed)

    if view.collecting:
        if elapsed < transition.debounce_seconds:
            return Verdict("wait", f"collecting this round's processors for {transition.debounce_seconds}s debounce "
                                   f"({len(view.completed)} reported so far)", missing)
        if view.completed:
            return Verdict("fire", f"debounce window closed: {len(view.completed)} processor(s) reported "
                                   f"({_names(view.completed)})", missing)
        return Verdict("expired" if deadline_passed else "wait", "no processor of this round finished successfully", missing, deadline_passed)

    n, k = len(expected), len(done)
    rule = transition.rule
    if expected and not missing:  # every rule fires at once when everything is complete
        return Verdict("fire", f"all {n} expected processor(s) complete", missing)
    if rule.type == "all" or not expected:
        wait_reason = f"{k} of {n} complete; waiting for {_names(set(missing))}"
    elif rule.type == "quorum":
        need = math.ceil((rule.quorum or 1.0) * n - 1e-9)
        if not critical_missing and k >= need:
            return Verdict("fire", f"quorum reached: {k} of {n} complete (need {need}), all critical complete", missing)
        wait_reason = f"{k} of {n} complete (quorum needs {need}); critical missing: {_names(critical_missing)}"
    elif rule.type == "tiered":
        for tier in sorted(rule.tiers, key=lambda t: t.after_seconds):
            if elapsed >= tier.after_seconds and k >= max(tier.min_complete, 1) and not critical_missing:
                return Verdict("fire", f"tier after {tier.after_seconds}s: {k} of {n} complete (min {tier.min_complete})", missing)
        wait_reason = f"{k} of {n} complete after {int(elapsed)}s; no tier satisfied; critical missing: {_names(critical_missing)}"
    else:
        raise ValueError(f"unknown trigger rule type {rule.type!r} on transition {transition.name}")

    if deadline_passed:
        if not critical_missing and k > 0:
            return Verdict("fire", f"deadline of {deadline}s passed: triggering with {k} of {n} complete "
                                   f"(missing {_names(set(missing))})", missing, True)
        return Verdict("expired", f"deadline of {deadline}s passed with {k} of {n} complete; cannot trigger "
                                  f"(critical missing: {_names(critical_missing)})", missing, True)
    return Verdict("wait", wait_reason, missing)


def wake_times(transition: Transition, view: RoundView) -> list[float]:
    """Moments at which the verdict may change without a new message (for status/sweep)."""
    if view.first_at is None:
        return []
    times = []
    if view.collecting:
        times.append(view.first_at + transition.debounce_seconds)
    if transition.rule.type == "tiered":
        times += [view.first_at + t.after_seconds for t in transition.rule.tiers]
    if transition.deadline_seconds is not None:
        times.append(view.first_at + transition.deadline_seconds)
    return sorted(times)
