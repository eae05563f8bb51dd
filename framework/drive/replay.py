"""Replay semantics: which ids each processor reprocesses for ``run --entities KEY=ID``.

A replay names entities of one (or more) entity kinds by their key column
(``player_lookup=lebronjames``). Passing those ids to every processor was wrong: a team
processor received player ids, matched no rows and still reported them as processed. So:

* a processor of a named kind processes exactly the named ids of that kind;
* a processor of another kind processes the ids *mapped* through the project's declared
  ``entity_mappings`` (given kind -> processor kind), read from the mapping's ``via`` table
  for the partition with query parameters (every declared mapping between the two kinds is
  used: a superset is safe because transforms are entity-local);
* a processor whose kind no named kind maps to is not run; the driver reports it with the
  reason (``ReplayTarget.skip_reason``), so the orchestrator still counts it;
* a processor without an entity kind is left to change detection (``ids`` None), as before
  the fix: it runs a full batch when its inputs changed, else reports ``no_data``.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping, Sequence

from framework.errors import ConfigError
from framework.manifest.model import EntityMapping, Processor, Project
from framework.sql.dialects import get_dialect

log = logging.getLogger(__name__)


def parse_entity_args(project: Project, values: Iterable[str]) -> dict[str, list[str]]:
    """``["player_lookup=lebronjames", ...]`` -> ``{"player": ["lebronjames"]}``.

    ``KEY`` is an entity kind's key column (``entity_kinds.<kind>.key``); the kind's name is
    accepted too. A bare ``ID`` is allowed only when the project has exactly one entity kind.
    Unknown keys raise :class:`ConfigError` naming the known keys (the CLI exits 2)."""
    by_key = {k.key: k.name for k in project.entity_kinds.values()}
    known = ", ".join(sorted(by_key)) or "(none: the project declares no entity_kinds)"
    out: dict[str, list[str]] = {}
    for item in values:
        key, sep, ident = item.partition("=")
        key, ident = key.strip(), ident.strip()
        if not sep:
            if len(project.entity_kinds) != 1:
                raise ConfigError(f"--entities {item!r}: name the entity key (KEY=ID); known keys: {known}",
                                  hint=f"e.g. --entities {next(iter(by_key), 'KEY')}={item}")
            kind, ident = next(iter(project.entity_kinds)), key
        elif key in by_key:
            kind = by_key[key]
        elif key in project.entity_kinds:
            kind = key
        else:
            raise ConfigError(f"--entities {item!r}: unknown entity key '{key}'; known keys: {known}",
                              hint="KEY is the key column of an entity kind in processors.yaml (entity_kinds)")
        if not ident:
            raise ConfigError(f"--entities {item!r}: empty id", hint="use KEY=ID, e.g. player_lookup=lebronjames")
        ids = out.setdefault(kind, [])
        if ident not in ids:
            ids.append(ident)
    return out


@dataclass
class ReplayTarget:
    """What one processor does in a replay: ``ids`` (None = decide as usual), or skip."""

    ids: list[str] | None
    skip_reason: str | None = None
    note: str | None = None  # how the ids were obtained (recorded as the run's reason)


@dataclass
class ReplayPlan:
    """The given ids per kind and their mapping to every other kind, cached per target kind.

    The pairs are read before the run rewrites anything (:meth:`prime`) and again, at the
    next use, after a processor rewrote a mapping's table (:meth:`rewritten`); a kind keeps
    the union. A replayed player who moved team today thus reprocesses the old team (whose
    rows still hold him) and the new one; reading the table once, before or after its writer
    ran, missed one of the two."""

    project: Project
    given: dict[str, list[str]]
    cache: dict[str, ReplayTarget] = field(default_factory=dict)
    stale: set[str] = field(default_factory=set)

    def prime(self, warehouse: Any, partition: Any) -> None:
        """Map the given ids to every kind a mapping reaches, through the tables as the
        previous runs left them (called before the run's first processor)."""
        for kind in self.project.entity_kinds:
            if kind not in self.given and kind not in self.cache and self._mappings_to(kind):
                self.cache[kind] = self._target(warehouse, kind, partition)

    def rewritten(self, processor: str) -> None:
        """``processor`` ran: the kinds mapped through its table map again at their next use."""
        for kind in self.cache:
            if kind not in self.given and any(m.via == processor for m in self._mappings_to(kind)):
                self.stale.add(kind)

    def for_processor(self, warehouse: Any, proc: Processor, partition: Any) -> ReplayTarget:
        kind = proc.entity
        if kind is None:
            return ReplayTarget(None, note="no entity kind: change detection decides (full batch if inputs changed)")
        if kind not in self.cache or kind in self.stale:
            fresh, before = self._target(warehouse, kind, partition), self.cache.get(kind)
            if before is not None and before.ids is not None and fresh.ids is not None:
                added = sorted(set(fresh.ids) - set(before.ids))
                fresh = ReplayTarget(sorted(set(before.ids) | set(fresh.ids)), note=(before.note or "") + (
                    f"; after a mapping table was rewritten also {', '.join(added)}" if added else ""))
            self.cache[kind] = fresh
            self.stale.discard(kind)
        return self.cache[kind]

    def _mappings_to(self, kind: str) -> list[EntityMapping]:
        return [m for src in self.given for m in mappings_between(self.project, src, kind)]

    def _target(self, warehouse: Any, kind: str, partition: Any) -> ReplayTarget:
        if kind in self.given:
            return ReplayTarget(sorted(self.given[kind]), note=f"replay: {kind} ids as given")
        ids: set[str] = set()
        used: list[str] = []
        for src, src_ids in self.given.items():
            for m in mappings_between(self.project, src, kind):
                ids |= set(map_ids(warehouse, self.project, m, src_ids, partition))
                used.append(f"{src} -> {kind} via {m.via}")
        if not used:
            given = ", ".join(sorted(self.given))
            return ReplayTarget(None, skip_reason=f"replay of {given}: no entity mapping from {given} to {kind} "
                                                  f"in processors.yaml (entity_mappings), so not run")
        return ReplayTarget(sorted(ids), note="replay: mapped " + "; ".join(used) + f" -> {len(ids)} {kind} id(s)")


def mappings_between(project: Project, source: str, target: str) -> list[EntityMapping]:
    """Every declared mapping ``source -> target`` (a replay uses all of them)."""
    return [m for m in project.entity_mappings if m.source == source and m.target == target]


def map_ids(warehouse: Any, project: Project, mapping: EntityMapping, ids: Sequence[str], partition: Any) -> list[str]:
    """Target ids the ``via`` table maps ``ids`` to for the partition (values as parameters).

    The same table and columns change detection's ``mapped`` inputs join on
    (:func:`framework.sql.context.input_spec`)."""
    from framework.backends.protocols import QueryParam
    from framework.sql.params import partition_param
    from framework.sql.context import mapping_source_table

    if not ids:
        return []
    via = mapping_source_table(project, mapping)
    src_col = mapping.source_column or project.entity_kinds[mapping.source].key
    dst_col = mapping.target_column or project.entity_kinds[mapping.target].key
    for col in (src_col, dst_col):
        if via.column(col) is None:
            raise ConfigError(f"entity mapping {mapping.name or mapping.source + ' -> ' + mapping.target}: "
                              f"table {via.fqn} (via {mapping.via}) has no column '{col}'", mapping.location,
                              "set source_column/target_column on the mapping")
    dialect = get_dialect(warehouse.dialect)
    src_type = project.entity_kinds[mapping.source].type
    params = [QueryParam("replay_ids", [str(i) for i in ids], src_type, array=True)]
    where = [dialect.in_array(src_col, "replay_ids"), f"{dst_col} IS NOT NULL"]
    pc = project.partition_column
    if via.column(pc) is not None:
        where.insert(0, f"{pc} = {dialect.param(pc)}")
        params.append(partition_param(project, partition))
    sql = f"SELECT DISTINCT {dst_col} AS k FROM {via.fqn} WHERE " + " AND ".join(where) + " ORDER BY 1"
    return [str(r["k"]) for r in warehouse.query(sql, params)]


def plan_from(project: Project, entities: Sequence[str] | Mapping[str, Sequence[str]] | None,
              entity_kind: str | None = None) -> ReplayPlan | None:
    """A plan from the driver's ``entities`` argument: ``{kind: ids}``, or a list of ids of
    ``entity_kind`` (default: the project's first declared kind, logged)."""
    if entities is None:
        return None
    if isinstance(entities, Mapping):
        given = {str(k): [str(i) for i in v] for k, v in entities.items()}
    else:
        kind = entity_kind or next(iter(project.entity_kinds), None)
        if kind is None:
            raise ConfigError("replay: the project declares no entity_kinds, so ids cannot be replayed",
                              hint="run without --entities (change detection) or with --full")
        if entity_kind is None:
            log.info("replay ids without a kind: taken as %s ids (the first declared entity kind)", kind)
        given = {kind: [str(i) for i in entities]}
    unknown = [k for k in given if k not in project.entity_kinds]
    if unknown:
        raise ConfigError(f"replay: unknown entity kind(s) {', '.join(unknown)}",
                          hint=f"entity kinds: {', '.join(project.entity_kinds) or '(none)'}")
    return ReplayPlan(project, given)


__all__ = ["parse_entity_args", "ReplayPlan", "ReplayTarget", "map_ids", "mappings_between", "plan_from"]
