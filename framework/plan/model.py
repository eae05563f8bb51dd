"""Plans are data: small frozen records that serialize to JSON (SQLMesh stages, Terraform).

A :class:`Resource` is one thing the backend must have (a table, a subscription, a policy
document); a :class:`Change` says what apply will do to one resource and why; a
:class:`Plan` is the ordered list of changes plus a fingerprint of the actual state it was
computed from, so that a saved plan can be refused when the world moved on. Nothing here
does I/O: the planner builds these, the applier visits them, the console renders them.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping

PLAN_FORMAT_VERSION = 1

# Order in which resource kinds are created; deletes run in the reverse order.
RESOURCE_TYPES = ("dataset", "table", "topic", "subscription", "schedule", "ledger", "orchestrator_config", "deployment")

CREATE, UPDATE, REPLACE, DELETE, NOOP, DRIFT = "create", "update", "replace", "delete", "no-op", "drift"
ACTIONS = (CREATE, UPDATE, REPLACE, DELETE, NOOP, DRIFT)
PENDING_ACTIONS = (CREATE, UPDATE, REPLACE, DELETE)

# Shown as ``before`` when the backend cannot report an attribute (e.g. DuckDB partitioning).
UNKNOWN = "(unknown)"


def canonical(value: Any) -> Any:
    """JSON-shaped copy (tuples -> lists, keys sorted on dump) so equality is structural."""
    return json.loads(json.dumps(value, sort_keys=True, default=str))


def content_hash(value: Any) -> str:
    """Stable short hash of JSON-able content: identical policies hash identically everywhere."""
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def type_rank(resource_type: str) -> int:
    return RESOURCE_TYPES.index(resource_type) if resource_type in RESOURCE_TYPES else len(RESOURCE_TYPES)


@dataclass(frozen=True)
class Resource:
    """One managed thing: ``type`` + ``name`` (the address is ``type.name``) + attributes.

    ``attributes`` are configuration compared by the diff. ``meta`` holds facts about the
    actual object that are not configuration (``has_rows``, ``managed`` marker); they inform
    whether a change is destructive but never cause one.
    """

    type: str
    name: str
    attributes: Mapping[str, Any] = field(default_factory=dict)
    meta: Mapping[str, Any] = field(default_factory=dict)

    @property
    def address(self) -> str:
        return f"{self.type}.{self.name}"

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"type": self.type, "name": self.name, "attributes": canonical(dict(self.attributes))}
        if self.meta:
            out["meta"] = canonical(dict(self.meta))
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "Resource":
        return cls(data["type"], data["name"], dict(data.get("attributes") or {}), dict(data.get("meta") or {}))

    def __hash__(self) -> int:  # attributes are dicts; identity is the address
        return hash(self.address)


@dataclass(frozen=True)
class AttributeChange:
    """``~ path: before -> after``; ``destructive`` says data or messages can be lost."""

    path: str
    before: Any
    after: Any
    destructive: bool = False
    forces_replace: bool = False
    reason: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"path": self.path, "before": canonical(self.before), "after": canonical(self.after),
                "destructive": self.destructive, "forces_replace": self.forces_replace, "reason": self.reason}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "AttributeChange":
        return cls(d["path"], d.get("before"), d.get("after"), bool(d.get("destructive")), bool(d.get("forces_replace")), d.get("reason", ""))


@dataclass(frozen=True)
class Change:
    """What apply does to one resource. ``before`` is the actual resource (None on create),
    ``after`` the desired one (None on delete/drift). ``refused`` marks a destructive change
    the plan was not allowed to make; ``reasons`` say why it is destructive."""

    action: str
    type: str
    name: str
    before: Resource | None = None
    after: Resource | None = None
    attribute_changes: tuple[AttributeChange, ...] = ()
    destructive: bool = False
    refused: bool = False
    drift: bool = False
    reasons: tuple[str, ...] = ()

    @property
    def address(self) -> str:
        return f"{self.type}.{self.name}"

    @property
    def pending(self) -> bool:
        return self.action in PENDING_ACTIONS

    def to_dict(self) -> dict[str, Any]:
        return {
            "action": self.action, "type": self.type, "name": self.name, "address": self.address,
            "before": self.before.to_dict() if self.before else None,
            "after": self.after.to_dict() if self.after else None,
            "attribute_changes": [a.to_dict() for a in self.attribute_changes],
            "destructive": self.destructive, "refused": self.refused, "drift": self.drift,
            "reasons": list(self.reasons),
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "Change":
        return cls(
            action=d["action"], type=d["type"], name=d["name"],
            before=Resource.from_dict(d["before"]) if d.get("before") else None,
            after=Resource.from_dict(d["after"]) if d.get("after") else None,
            attribute_changes=tuple(AttributeChange.from_dict(a) for a in d.get("attribute_changes") or ()),
            destructive=bool(d.get("destructive")), refused=bool(d.get("refused")), drift=bool(d.get("drift")),
            reasons=tuple(d.get("reasons") or ()),
        )


@dataclass(frozen=True)
class Plan:
    """An ordered list of changes computed against one observed actual state.

    ``state_fingerprint`` hashes that actual state; apply re-reads the backend and refuses
    the plan if the fingerprint differs (stale plan). ``changes`` include no-ops so the plan
    also records the full desired set (apply needs it to re-read the same scope).
    """

    project: str
    target: str
    state_fingerprint: str
    changes: tuple[Change, ...]
    allow_destructive: bool = False
    prune: bool = False
    managed_prefixes: tuple[str, ...] = ()
    created_at: str = ""
    version: int = PLAN_FORMAT_VERSION
    # processors whose code changed since their last run: their next runs reprocess every
    # entity (framework.plan.reprocess); informational, not applied, not in the fingerprint
    reprocess: tuple[Any, ...] = ()

    # ---------------------------------------------------------------- views
    @property
    def pending(self) -> list[Change]:
        return [c for c in self.changes if c.pending]

    @property
    def drift(self) -> list[Change]:
        return [c for c in self.changes if c.drift]

    @property
    def refused(self) -> list[Change]:
        return [c for c in self.changes if c.refused]

    @property
    def has_changes(self) -> bool:
        """True when the backend differs from the manifests (pending changes or drift)."""
        return bool(self.pending) or bool(self.drift)

    @property
    def desired(self) -> list[Resource]:
        return [c.after for c in self.changes if c.after is not None]

    def summary(self) -> dict[str, int]:
        counts = {a: 0 for a in ACTIONS}
        for c in self.changes:
            counts[c.action] += 1
        counts["refused"] = len(self.refused)
        return counts

    # ---------------------------------------------------------------- JSON
    def to_dict(self) -> dict[str, Any]:
        return {
            "format_version": self.version, "project": self.project, "target": self.target,
            "created_at": self.created_at, "state_fingerprint": self.state_fingerprint,
            "allow_destructive": self.allow_destructive, "prune": self.prune,
            "managed_prefixes": list(self.managed_prefixes),
            "summary": self.summary(), "has_changes": self.has_changes,
            "changes": [c.to_dict() for c in self.changes],
            "reprocess": [r.to_dict() for r in self.reprocess],
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=False)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "Plan":
        from framework.errors import PlanError

        if d.get("format_version") != PLAN_FORMAT_VERSION:
            raise PlanError(f"plan format version {d.get('format_version')!r} is not supported (expected {PLAN_FORMAT_VERSION})",
                            hint="re-create the plan with this version of pipectl")
        return cls(
            project=d["project"], target=d["target"], state_fingerprint=d["state_fingerprint"],
            changes=tuple(Change.from_dict(c) for c in d["changes"]),
            allow_destructive=bool(d.get("allow_destructive")), prune=bool(d.get("prune")),
            managed_prefixes=tuple(d.get("managed_prefixes") or ()), created_at=d.get("created_at", ""),
            reprocess=tuple(_reprocessing(r) for r in d.get("reprocess") or ()),
        )

    @classmethod
    def from_json(cls, text: str) -> "Plan":
        return cls.from_dict(json.loads(text))


def _reprocessing(d: Mapping[str, Any]) -> Any:
    from framework.plan.reprocess import Reprocessing

    return Reprocessing.from_dict(d)


def state_fingerprint(actual: Iterable[Resource]) -> str:
    """Hash of the observed actual state (attributes and meta facts such as ``has_rows``)."""
    items = sorted((r.address, canonical(dict(r.attributes)), canonical(dict(r.meta))) for r in actual)
    return hashlib.sha256(json.dumps(items, sort_keys=True).encode()).hexdigest()


__all__ = ["Resource", "AttributeChange", "Change", "Plan", "state_fingerprint", "content_hash", "canonical",
           "RESOURCE_TYPES", "ACTIONS", "CREATE", "UPDATE", "REPLACE", "DELETE", "NOOP", "DRIFT", "UNKNOWN"]
