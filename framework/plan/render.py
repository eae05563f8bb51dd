"""Render a plan for humans, Terraform style. The library never prints; commands call this."""
from __future__ import annotations

import json
from typing import Any

from framework.plan.applier import ApplyResult
from framework.plan.model import CREATE, DELETE, DRIFT, NOOP, REPLACE, UPDATE, Change, Plan

SYMBOLS = {CREATE: "+", UPDATE: "~", REPLACE: "-/+", DELETE: "-", DRIFT: "!", NOOP: " "}


def _value(v: Any) -> str:
    if v is None:
        return "null"
    if isinstance(v, str):
        return v
    return json.dumps(v, sort_keys=True)


def change_lines(change: Change) -> list[str]:
    head = f"  {SYMBOLS[change.action]} {change.address}"
    tags = []
    if change.action == DRIFT:
        tags.append("drift: in the backend, not in the manifests; --prune deletes it")
    elif change.drift:
        tags.append("drift, pruned")
    if change.destructive:
        tags.append("destructive, REFUSED without --allow-destructive" if change.refused else "destructive")
    lines = [head + (f"  ({'; '.join(tags)})" if tags else "")]
    if change.type == "schedule" and change.action in (CREATE, REPLACE) and change.after is not None:
        a = change.after.attributes  # a schedule is read at a glance, Terraform style
        lines.append(f"      + schedule: \"{a.get('schedule')}\" ({a.get('time_zone')}) -> publishes to topic {a.get('topic')}")
    for a in change.attribute_changes:
        lines.append(f"      ~ {a.path}: {_value(a.before)} -> {_value(a.after)}" + ("  # forces replacement" if a.forces_replace else ""))
    if change.destructive:
        for reason in change.reasons:
            lines.append(f"      ! {reason}")
    return lines


def plan_text(plan: Plan, show_noop: bool = False) -> str:
    lines = [f"pipectl plan: project '{plan.project}', target '{plan.target}'", ""]
    shown = [c for c in plan.changes if c.action != NOOP or show_noop]
    for change in shown:
        lines.extend(change_lines(change))
    if shown:
        lines.append("")
    s = plan.summary()
    if not plan.has_changes:
        lines.append(f"No changes. The backend matches the manifests ({s[NOOP]} resources).")
    else:
        lines.append(f"Plan: {s[CREATE]} to create, {s[UPDATE]} to update, {s[REPLACE]} to replace, "
                     f"{s[DELETE]} to delete, {s[NOOP]} unchanged; {len(plan.drift)} drifted.")
    if plan.refused:
        lines.append(f"{len(plan.refused)} destructive change(s) refused: re-run with --allow-destructive to allow them.")
    if plan.reprocess:
        from framework.plan.reprocess import reprocess_lines

        lines += [""] + reprocess_lines(list(plan.reprocess))
    return "\n".join(lines)


def apply_text(result: ApplyResult) -> str:
    lines = [f"  applied {address}" for address in result.applied]
    lines.append(f"Apply complete: {len(result.applied)} change(s) applied.")
    if not result.converged:
        lines.append(f"warning: {len(result.remaining)} change(s) still pending after apply: "
                     + ", ".join(c.address for c in result.remaining))
    return "\n".join(lines)


__all__ = ["plan_text", "apply_text", "change_lines"]
