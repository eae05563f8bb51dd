"""What templates need to know about a processor's inputs, derived from the manifest.

Pure functions of the resolved model (no I/O, no Jinja): for every input, which table it
reads, which columns count as a change, and how its rows are attributed to the processor's
entities (``scope``). Kept apart from rendering so detection semantics are testable and the
templates stay free of manifest logic.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from framework.errors import ConfigError
from framework.manifest.diagnostics import did_you_mean
from framework.manifest.model import EntityMapping, Input, Processor, Project, Table

STATE_DATASET = "_pipectl"
STATE_TABLE = f"{STATE_DATASET}.entity_fingerprints"
CHANGE_SET_TABLE = f"{STATE_DATASET}.change_sets"
# The state's format, stored on every state row (``state_format``). 2: one numeric
# fingerprint per (processor, partition, entity) over all inputs. 1 (pipectl before 2026-11):
# one string fingerprint per input in ``_pipectl.processed_fingerprints``; upgraded by
# framework.run.changes (entity set kept, fingerprints unknown: read as changed once).
STATE_FORMAT = 2
LEGACY_STATE_TABLE = f"{STATE_DATASET}.processed_fingerprints"


def state_table(project: Project) -> str:
    """``_pipectl.entity_fingerprints`` under the target's ``dataset_prefix``."""
    return project.dataset_prefix + STATE_TABLE


def legacy_state_table(project: Project) -> str:
    """The format-1 state table (``_pipectl.processed_fingerprints``), read once to upgrade."""
    return project.dataset_prefix + LEGACY_STATE_TABLE


def changeset_table(project: Project) -> str:
    """``_pipectl.change_sets`` under the target's ``dataset_prefix``."""
    return project.dataset_prefix + CHANGE_SET_TABLE


# Entity key used for inputs that carry no usable key: one fingerprint for the whole partition.
PARTITION_SENTINEL = "__partition__"


@dataclass(frozen=True)
class InputSpec:
    """One input as the templates see it.

    ``scope``: ``entity`` (the input has the processor's key column ``key``), ``mapped``
    (the input has another kind's key ``key``, mapped through ``mapping_table``) or
    ``partition`` (no usable key: any change affects every entity of the partition).
    ``row_columns`` are the columns hashed per row (templates prefix them with the alias ``i``).
    ``key_sql``: the input's declared key expression (``UPPER(TRIM(i.team_abbr))``): the
    transform normalises the key, so detection groups and filters by the same expression.
    """

    name: str
    kind: str
    table: str
    scope: str
    key: str | None
    columns: tuple[str, ...]
    row_columns: tuple[str, ...]
    mapping_table: str | None = None
    mapping_from: str | None = None
    mapping_to: str | None = None
    mapping_partitioned: bool = False
    key_sql: str | None = None  # the declared key expression with its columns on alias ``i``


def input_table(project: Project, inp: Input) -> tuple[Table, str | None]:
    """The table an input reads and the entity kind of its rows (None if it has none)."""
    if inp.kind == "source":
        src = project.sources.get(inp.name)
        if src is None:
            raise ConfigError(f"unknown source '{inp.name}'", inp.location,
                              did_you_mean(inp.name, project.sources) or "declare it under 'sources' in processors.yaml")
        return src.table, src.entity
    up = project.processors.get(inp.name)
    if up is None:
        raise ConfigError(f"unknown input processor '{inp.name}'", inp.location,
                          did_you_mean(inp.name, project.processors) or "use a processor name from processors.yaml (`pipectl validate` lists all such problems)")
    if up.output is None:
        raise ConfigError(f"input '{inp.name}' has no output table", inp.location,
                          f"declare 'output' on processor '{inp.name}', or read its table as a source")
    return up.output, up.entity


def compared_columns(project: Project, inp: Input, table: Table, kind: str | None) -> tuple[str, ...]:
    """Input ``compare`` override, else the upstream's declared change columns, else all
    columns except the partition column and the rows' own entity key."""
    if inp.compare:
        return tuple(inp.compare)
    declared: tuple[str, ...] | None
    if inp.kind == "source":
        declared = project.sources[inp.name].change_columns
    else:
        declared = project.processors[inp.name].change_detection.columns
    if declared:
        return tuple(declared)
    skip = {project.partition_column}
    if kind and kind in project.entity_kinds:
        skip.add(project.entity_kinds[kind].key)
    return tuple(c for c in table.column_names if c not in skip)


def find_mapping(project: Project, inp: Input, source_kind: str, target_kind: str) -> EntityMapping | None:
    """The mapping named by the input, else the unique mapping between the two kinds."""
    if inp.mapping:
        for m in project.entity_mappings:
            if m.name == inp.mapping:
                return m
        raise ConfigError(f"input '{inp.name}' uses unknown entity mapping '{inp.mapping}'", inp.location,
                          did_you_mean(inp.mapping, [m.name for m in project.entity_mappings if m.name])
                          or "declare it under 'entity_mappings' in processors.yaml")
    found = [m for m in project.entity_mappings if m.source == source_kind and m.target == target_kind]
    if len(found) > 1:
        names = ", ".join(m.name for m in found)
        raise ConfigError(f"input '{inp.name}': several entity mappings {source_kind} -> {target_kind} ({names})", inp.location, "name one with 'mapping:' on the input")
    return found[0] if found else None


def input_mapping(project: Project, processor: Processor, inp: Input) -> EntityMapping | None:
    """The entity mapping through which ``processor``'s detection attributes ``inp``'s rows
    to its entities (None: read by its own key, or without one). The same decision as
    :func:`input_spec`, without reading tables: the graph (:mod:`framework.graph.graph`) makes
    each such mapping's table a dependency of ``processor``, so it is written first.
    Raises ConfigError for an unknown or ambiguous mapping, as ``input_spec`` does."""
    target = project.entity_kinds.get(processor.entity) if processor.entity else None
    if inp.kind == "source":
        src = project.sources.get(inp.name)
        kind = src.entity if src is not None else None
    else:
        up = project.processors.get(inp.name)
        kind = up.entity if up is not None else None
    if target is None or kind is None or kind not in project.entity_kinds:
        return None
    if not inp.mapping and kind == target.name:
        return None
    return find_mapping(project, inp, kind, target.name)


def mapping_source_table(project: Project, mapping: EntityMapping) -> Table:
    """The table an entity mapping reads its key pairs from (public: replay reads it too)."""
    via = mapping.via
    if via in project.processors and project.processors[via].output is not None:
        return project.processors[via].output  # type: ignore[return-value]
    if via in project.sources:
        return project.sources[via].table
    known = [n for n, p in project.processors.items() if p.output is not None] + list(project.sources)
    raise ConfigError(f"entity mapping {mapping.name or f'{mapping.source} -> {mapping.target}'} reads its keys via unknown processor or source '{via}'",
                      mapping.location, did_you_mean(via, known) or "set 'via' to a processor with an output table or a declared source")


def input_spec(project: Project, processor: Processor, inp: Input) -> InputSpec:
    table, kind = input_table(project, inp)
    columns = compared_columns(project, inp, table, kind)
    target = project.entity_kinds.get(processor.entity) if processor.entity else None
    base = dict(name=inp.name, kind=inp.kind, table=table.fqn, columns=columns)
    # An input naming a mapping uses it even between entities of the same kind (a team's
    # defence row changes when its *opponent's* box score changes: team -> opponent team).
    if inp.key:
        base["key_sql"] = qualify_key(inp.key, table)
    if target is not None and not inp.mapping and (kind == target.name or (kind is None and table.column(target.key) is not None)):
        return InputSpec(**base, scope="entity", key=target.key, row_columns=columns or (target.key,))
    if target is not None and kind is not None and kind in project.entity_kinds:
        mapping = input_mapping(project, processor, inp)
        if mapping is not None:
            via = mapping_source_table(project, mapping)
            src_key = project.entity_kinds[kind].key
            return InputSpec(
                **base,
                scope="mapped",
                key=src_key,
                row_columns=(src_key,) + tuple(c for c in columns if c != src_key),
                mapping_table=via.fqn,
                mapping_from=mapping.source_column or src_key,
                mapping_to=mapping.target_column or target.key,
                mapping_partitioned=via.column(project.partition_column) is not None,
            )
    all_cols = tuple(c for c in table.column_names if c != project.partition_column)
    base.pop("key_sql", None)
    return InputSpec(**base, scope="partition", key=None, row_columns=columns or all_cols)


_TOKEN = re.compile(r"'(?:[^'\\]|\\.|'')*'|\"[^\"]*\"|`[^`]*`|(?<![\w.])([A-Za-z_][A-Za-z0-9_]*)(?!\s*\()(?![\w.])")


def qualify_key(expression: str, table: Table, alias: str = "i") -> str:
    """Put the input's columns of a declared key expression on ``alias``, leaving string
    literals, function names and unknown words (SQL keywords) alone. Validation checks the
    expression with sqlglot (lineage rules); this stays a pure function for rendering."""
    names = set(table.column_names)

    def sub(m: re.Match) -> str:
        word = m.group(1)
        return f"{alias}.{word}" if word is not None and word in names else m.group(0)

    return _TOKEN.sub(sub, expression)


def input_specs(project: Project, processor: Processor) -> list[InputSpec]:
    return [input_spec(project, processor, inp) for inp in processor.inputs]


def row_plan_applies(specs: list[InputSpec]) -> bool:
    """True when detection may join the input's rows with the state without grouping the
    partition by entity first (detect.sql.j2's row plan): one input keyed by the processor's
    own entity (no mapping, no keyless input). A choice of plan, never of result."""
    return len(specs) == 1 and specs[0].scope == "entity"
