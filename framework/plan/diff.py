"""Desired vs actual resources -> ordered changes, with the reason for every destructive one.

Pure functions, no I/O. The rules per resource type say which attribute changes are safe
updates, which force a replacement and which lose data or messages (destructive):

- table: adding a NULLABLE/REPEATED column is a safe update; dropping or retyping a column,
  tightening NULLABLE -> REQUIRED or adding a REQUIRED column is destructive; a different
  partitioning forces a replace (destructive); clustering is a safe update.
- subscription: a different topic or filter forces a replace, which drops the backlog of
  unacknowledged messages (destructive); ack deadline, attempts, dead letters are updates.
- everything else: attribute changes are safe updates.
- deleting a table with rows (or whose row count is unknown), or a dataset with tables,
  is destructive. Backend objects the manifests do not declare are drift; they are planned
  for deletion only with ``prune`` unless they carry pipectl's own ``managed`` marker
  (documents pipectl wrote), in which case removing them from the manifests deletes them.
"""
from __future__ import annotations

from typing import Any, Mapping, Sequence

from framework.plan.model import (
    CREATE, DELETE, DRIFT, NOOP, REPLACE, UNKNOWN, UPDATE,
    AttributeChange, Change, Resource, canonical, type_rank,
)

# Attributes whose change forces replacing the object, and why that is destructive.
REPLACE_ON: dict[str, dict[str, str]] = {
    "table": {"partition_by": "changing partitioning recreates the table; its rows are dropped"},
    "subscription": {
        "topic": "replacing a subscription drops its unacknowledged messages",
        "filter": "replacing a subscription drops its unacknowledged messages (a filter cannot be changed in place)",
    },
}


def diff(desired: Sequence[Resource], actual: Sequence[Resource], *, allow_destructive: bool = False,
         prune: bool = False) -> list[Change]:
    """All changes (no-ops included) in apply order: deletes first, deepest kind first,
    then creates/updates/replaces by kind (datasets before tables, topics before subscriptions)."""
    actual_by = {r.address: r for r in actual}
    desired_by = {r.address: r for r in desired}
    changes: list[Change] = []
    for address, want in desired_by.items():
        have = actual_by.get(address)
        change = _compare(want, have) if have is not None else Change(CREATE, want.type, want.name, None, want)
        changes.append(_gate(change, allow_destructive))
    for address, have in actual_by.items():
        if address in desired_by:
            continue
        changes.append(_gate(_orphan(have, prune), allow_destructive))
    deletes = [c for c in changes if c.action in (DELETE, DRIFT)]
    others = [c for c in changes if c.action not in (DELETE, DRIFT)]
    deletes.sort(key=lambda c: (-type_rank(c.type), c.name))
    others.sort(key=lambda c: (type_rank(c.type), c.name))
    return deletes + others


def _gate(change: Change, allow_destructive: bool) -> Change:
    if change.destructive and not allow_destructive and change.pending:
        return Change(change.action, change.type, change.name, change.before, change.after, change.attribute_changes,
                      destructive=True, refused=True, drift=change.drift, reasons=change.reasons)
    return change


def _orphan(have: Resource, prune: bool) -> Change:
    managed = bool(have.meta.get("managed"))
    if not managed and not prune:
        return Change(DRIFT, have.type, have.name, have, None, drift=True,
                      reasons=("exists in the backend but not in the manifests; `--prune` deletes it",))
    reasons: list[str] = []
    if have.type == "table" and have.meta.get("has_rows") is not False:
        reasons.append("deleting a table that has rows" if have.meta.get("has_rows") else "deleting a table whose row count is unknown")
    if have.type == "dataset" and have.meta.get("has_tables"):
        reasons.append("deleting a dataset that still holds tables")
    return Change(DELETE, have.type, have.name, have, None, destructive=bool(reasons), drift=not managed, reasons=tuple(reasons))


def _compare(want: Resource, have: Resource) -> Change:
    if want.type == "table":
        attrs = _table_changes(want.attributes, have.attributes)
    else:
        attrs = _generic_changes(want.type, want.attributes, have.attributes)
    if not attrs:
        return Change(NOOP, want.type, want.name, have, want)
    replace = any(a.forces_replace for a in attrs)
    reasons = tuple(dict.fromkeys(a.reason for a in attrs if a.destructive and a.reason))
    destructive = any(a.destructive for a in attrs)
    return Change(REPLACE if replace else UPDATE, want.type, want.name, have, want, tuple(attrs), destructive, reasons=reasons)


def _generic_changes(rtype: str, want: Mapping[str, Any], have: Mapping[str, Any]) -> list[AttributeChange]:
    out = []
    replace_on = REPLACE_ON.get(rtype, {})
    for key in sorted(set(want) | set(have)):
        if key not in want:  # the backend reports more than we manage: not ours to change
            continue
        after = canonical(want[key])
        if key not in have:
            out.append(AttributeChange(key, UNKNOWN, after, reason="the backend does not report it; apply records it"))
            continue
        before = canonical(have[key])
        if before == after:
            continue
        if key in replace_on:
            out.append(AttributeChange(key, before, after, destructive=True, forces_replace=True, reason=replace_on[key]))
        else:
            out.append(AttributeChange(key, before, after))
    return out


def _table_changes(want: Mapping[str, Any], have: Mapping[str, Any]) -> list[AttributeChange]:
    out = column_changes(want.get("columns") or [], have.get("columns") or [])
    rest_want = {k: v for k, v in want.items() if k != "columns"}
    rest_have = {k: v for k, v in have.items() if k != "columns"}
    out.extend(_generic_changes("table", rest_want, rest_have))
    return out


def column_changes(want: Sequence[Mapping[str, Any]], have: Sequence[Mapping[str, Any]]) -> list[AttributeChange]:
    """Column-level diff by name (order is not significant)."""
    want_by = {c["name"]: c for c in want}
    have_by = {c["name"]: c for c in have}
    out: list[AttributeChange] = []
    for name, col in have_by.items():
        if name not in want_by:
            out.append(AttributeChange(f"columns.{name}", _col_text(col), None, destructive=True,
                                       reason=f"dropping column '{name}' loses its data"))
    for name, col in want_by.items():
        old = have_by.get(name)
        if old is None:
            mode = col.get("mode", "NULLABLE")
            if mode == "REQUIRED":
                out.append(AttributeChange(f"columns.{name}", None, _col_text(col), destructive=True,
                                           reason=f"adding REQUIRED column '{name}': existing rows have no value for it"))
            else:
                out.append(AttributeChange(f"columns.{name}", None, _col_text(col)))
            continue
        if old.get("type") != col.get("type"):
            out.append(AttributeChange(f"columns.{name}.type", old.get("type"), col.get("type"), destructive=True,
                                       reason=f"retyping column '{name}' rewrites or loses its values"))
        old_mode, new_mode = old.get("mode", "NULLABLE"), col.get("mode", "NULLABLE")
        if old_mode != new_mode:
            tighten = new_mode == "REQUIRED" or old_mode == "REPEATED" or new_mode == "REPEATED"
            out.append(AttributeChange(f"columns.{name}.mode", old_mode, new_mode, destructive=tighten,
                                       reason=f"changing column '{name}' from {old_mode} to {new_mode} can fail or lose values" if tighten else ""))
    return out


def _col_text(col: Mapping[str, Any]) -> str:
    return f"{col.get('type')} {col.get('mode', 'NULLABLE')}"


__all__ = ["diff", "column_changes", "REPLACE_ON"]
