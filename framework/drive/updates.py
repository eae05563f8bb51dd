"""Entities on the command line, and what a project's sample hooks change by default.

Why: the CLI once spoke basketball (``simulate update --player``, ``demo --player
lebronjames``, ``run --changed`` "players"); a user of the IoT example has no player. The
framework names an entity by the manifest's vocabulary, ``KEY=ID`` with KEY an entity kind's
key column (``sensor_id=S-0003``) or the kind's name (``sensor=S-0003``), checked against
``entity_kinds`` with a did-you-mean. What to edit when the user says nothing (which entity,
which columns, the demo's edits) is the example's business, declared beside its hooks::

    # pipelines/<project>/sample_data.py (or sample_data.py beside processors.yaml)
    UPDATE_DEFAULTS = {
        "entity": "player_lookup=lebronjames",   # KEY=ID, the default entity to edit
        "set": {"points": 41, "fg_made": 16},     # COLUMN: VALUE on apply_update's default table
        "demo_edits": [                           # optional: the demo's update, (table|None, {col: v})
            [None, {"points": 41, "fg_made": 16}],
            ["odds_api_player_points_props", {"points_line": 31.5}]],
        "kinds": ["player"],                      # optional: kinds apply_update edits (default: entity's)
    }

A hook that edits several kinds declares an ``entity_kind`` parameter and receives it.
"""
from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from typing import Any, Callable

from framework.errors import ConfigError
from framework.manifest.model import Project

Edit = tuple  # (table or None for the hook's default table, {column: value})


@dataclass(frozen=True)
class EntityRef:
    """One entity named on the command line: its kind, the kind's key column and the id."""

    kind: str
    key: str
    id: str

    def __str__(self) -> str:
        return f"{self.key}={self.id}"


def _kind_hint(project: Project) -> str:
    return ", ".join(f"{k.key}=ID ({k.name})" for k in project.entity_kinds.values()) or "(none declared)"


def parse_entity(project: Project, text: str, default_kind: str | None = None, option: str = "--entity") -> EntityRef:
    """``KEY=ID`` (KEY a key column or a kind name) or a bare ``ID`` of ``default_kind`` (else
    of the project's only kind). Raises :class:`ConfigError` with a did-you-mean."""
    from framework.manifest.diagnostics import did_you_mean

    kinds = project.entity_kinds
    if not kinds:
        raise ConfigError(f"{option} {text!r}: project '{project.name}' declares no entity_kinds",
                          hint="declare entity_kinds in processors.yaml (see docs/manifests.md)")
    key, sep, ident = str(text).partition("=")
    key, ident = key.strip(), ident.strip()
    if not sep:
        kind = default_kind or (next(iter(kinds)) if len(kinds) == 1 else None)
        if kind is None:
            raise ConfigError(f"{option} {text!r}: name the entity as KEY=ID; this project has several kinds",
                              hint=f"one of: {_kind_hint(project)}")
        ident = key
    else:
        by_key = {k.key: k.name for k in kinds.values()}
        kind = by_key.get(key) or (key if key in kinds else None)
        if kind is None:
            guess = did_you_mean(key, sorted(set(by_key) | set(kinds)))
            raise ConfigError(f"{option} {text!r}: no entity key or kind '{key}' in processors.yaml"
                              + (f" ({guess})" if guess else ""), hint=f"use one of: {_kind_hint(project)}")
    if not ident:
        raise ConfigError(f"{option} {text!r}: empty id", hint=f"use KEY=ID, one of: {_kind_hint(project)}")
    return EntityRef(kind, kinds[kind].key, ident)


@dataclass(frozen=True)
class UpdateDefaults:
    """The project's ``UPDATE_DEFAULTS`` (all optional): default entity, columns, demo edits."""

    entity: EntityRef | None = None
    changes: dict[str, Any] = field(default_factory=dict)
    demo_edits: tuple[Edit, ...] = ()
    kinds: tuple[str, ...] = ()  # kinds apply_update can edit; empty = any
    where: str = "UPDATE_DEFAULTS"

    @property
    def kind(self) -> str | None:
        """The kind a bare id names: the default entity's, else the one kind the hook edits."""
        if self.entity is not None:
            return self.entity.kind
        return self.kinds[0] if len(self.kinds) == 1 else None

    def edits(self) -> tuple[Edit, ...]:
        """The demo's edits, else the default columns on the hook's default table."""
        if self.demo_edits:
            return self.demo_edits
        return ((None, dict(self.changes)),) if self.changes else ()


def update_defaults(project: Project) -> UpdateDefaults:
    """Read and check ``UPDATE_DEFAULTS`` from the project's sample-hook modules."""
    from framework.drive.hooks import sample_attr

    raw, where = sample_attr(project, "UPDATE_DEFAULTS")
    if raw is not None:
        return _check(project, raw, f"{where}: UPDATE_DEFAULTS")
    return UpdateDefaults()


def _check(project: Project, raw: Any, where: str) -> UpdateDefaults:
    def bad(msg: str) -> ConfigError:
        return ConfigError(f"{where}: {msg}", hint="see docs/runtime.md#sample-data-hooks for its shape")

    if not isinstance(raw, dict):
        raise bad(f"expected a dict, got {type(raw).__name__}")
    unknown = sorted(set(raw) - {"entity", "set", "demo_edits", "kinds"})
    if unknown:
        raise bad(f"unknown key(s) {', '.join(unknown)} (known: entity, set, demo_edits, kinds)")
    entity = parse_entity(project, raw["entity"], option=f"{where}['entity']") if raw.get("entity") else None
    changes = raw.get("set") or {}
    if not isinstance(changes, dict):
        raise bad("'set' must map column names to values")
    edits = []
    for item in raw.get("demo_edits") or ():
        if not (isinstance(item, (list, tuple)) and len(item) == 2 and isinstance(item[1], dict)
                and (item[0] is None or isinstance(item[0], str))):
            raise bad(f"each demo edit is [table or None, {{column: value}}], got {item!r}")
        edits.append((item[0], dict(item[1])))
    kinds = tuple(raw.get("kinds") or ((entity.kind,) if entity else ()))
    for k in kinds:
        if k not in project.entity_kinds:
            raise bad(f"'kinds' names '{k}', not an entity kind of processors.yaml")
    return UpdateDefaults(entity, dict(changes), tuple(edits), kinds, where)


def check_kind(defaults: UpdateDefaults, entity: EntityRef) -> None:
    """The hook edits only the kinds it declares: editing a site with a sensor hook is a
    usage error, not a silent no-op."""
    if defaults.kinds and entity.kind not in defaults.kinds:
        raise ConfigError(f"--entity {entity}: the project's sample hook apply_update edits "
                          f"{'/'.join(defaults.kinds)} entities, not {entity.kind}",
                          hint=f"name a {defaults.kinds[0]} (e.g. {defaults.entity or defaults.kinds[0] + '=ID'}), "
                               f"or extend apply_update and {defaults.where}['kinds']")


def call_apply_update(hook: Callable[..., Any], warehouse: Any, date: str, entity: EntityRef,
                      table: str | None, changes: dict[str, Any]) -> Any:
    """Call the hook, passing ``entity_kind`` only to hooks that declare it."""
    extra: dict[str, Any] = {"table": table} if table else {}
    if "entity_kind" in inspect.signature(hook).parameters:
        extra["entity_kind"] = entity.kind
    return hook(warehouse, date, entity.id, **extra, **changes)


__all__ = ["EntityRef", "UpdateDefaults", "call_apply_update", "check_kind", "parse_entity", "update_defaults"]
