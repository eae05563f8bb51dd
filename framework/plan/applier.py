"""Apply visits a plan's changes in order; nothing is cached, so nothing can lie.

Before the first step the applier re-reads the actual state of the plan's scope and refuses
the plan when its fingerprint differs from the one the plan was computed from (stale plan).
Each step is idempotent (create skips what exists, delete skips what is gone), so a failed
apply can simply be planned and applied again; the next plan describes exactly what is left
because it re-reads the backend. After the last step the applier re-reads once more and
reports anything that did not converge instead of assuming success.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Sequence

from framework.errors import PipectlError, PlanError
from framework.plan.actual import ResourceProvider, Scope, read_actual
from framework.plan.diff import diff
from framework.plan.model import CREATE, DELETE, REPLACE, UPDATE, Change, Plan, state_fingerprint


@dataclass
class ApplyResult:
    """What apply did: addresses applied in order, and changes still pending afterwards."""

    applied: list[str] = field(default_factory=list)
    remaining: list[Change] = field(default_factory=list)

    @property
    def converged(self) -> bool:
        return not self.remaining

    def to_dict(self) -> dict:
        return {"applied": self.applied, "converged": self.converged,
                "remaining": [c.to_dict() for c in self.remaining]}


def scope_of(plan: Plan) -> Scope:
    return Scope(plan.project, tuple(plan.desired), tuple(plan.managed_prefixes))


def check_applicable(plan: Plan) -> None:
    """Refuse plans holding destructive changes that were not allowed when planning."""
    refused = plan.refused
    if refused:
        lines = "; ".join(f"{c.address} ({c.action}): {', '.join(c.reasons)}" for c in refused)
        raise PlanError(f"the plan holds {len(refused)} destructive change(s) that were not allowed: {lines}",
                        hint="re-run the plan with --allow-destructive if the data loss is intended")


def apply_plan(plan: Plan, providers: Sequence[ResourceProvider], *, check_fresh: bool = True,
               on_step: Callable[[Change], None] | None = None) -> ApplyResult:
    """Apply exactly ``plan``. The caller holds the apply lock."""
    check_applicable(plan)
    by_type = {p.type: p for p in providers}
    scope = scope_of(plan)
    if check_fresh:
        fingerprint = state_fingerprint(read_actual(providers, scope))
        if fingerprint != plan.state_fingerprint:
            raise PlanError(f"stale plan: the actual state of project '{plan.project}' ({plan.target}) changed since the plan was made",
                            hint="run `pipectl plan` again and review the new plan")
    result = ApplyResult()
    pending = plan.pending
    for step, change in enumerate(pending, start=1):
        provider = by_type.get(change.type)
        if provider is None:
            raise PlanError(f"no provider for resource type '{change.type}' on target '{plan.target}' ({change.address})",
                            hint="this backend cannot manage that resource type yet")
        if on_step is not None:
            on_step(change)
        try:
            _apply_one(provider, change)
        except PipectlError as exc:
            raise PlanError(f"apply failed at {change.address} ({change.action}), step {step} of {len(pending)}: {exc.render()}",
                            hint="nothing is rolled back; run `pipectl plan` to see what remains, then apply again") from exc
        except Exception as exc:  # driver errors: name the resource, keep the cause chained
            raise PlanError(f"apply failed at {change.address} ({change.action}), step {step} of {len(pending)}: {type(exc).__name__}: {exc}",
                            hint="nothing is rolled back; run `pipectl plan` to see what remains, then apply again") from exc
        result.applied.append(change.address)
    after = diff(plan.desired, read_actual(providers, scope), allow_destructive=plan.allow_destructive, prune=plan.prune)
    result.remaining = [c for c in after if c.pending]
    return result


def _apply_one(provider: ResourceProvider, change: Change) -> None:
    if change.action == CREATE:
        assert change.after is not None
        provider.create(change.after)
    elif change.action == UPDATE:
        assert change.before is not None and change.after is not None
        provider.update(change.before, change.after, change.attribute_changes)
    elif change.action == REPLACE:
        assert change.before is not None and change.after is not None
        provider.replace(change.before, change.after)
    elif change.action == DELETE:
        assert change.before is not None
        provider.delete(change.before)


__all__ = ["apply_plan", "ApplyResult", "check_applicable", "scope_of"]
