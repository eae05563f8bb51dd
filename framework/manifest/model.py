"""The resolved, frozen model of a project: what every other package consumes.

Two stages (as in dbt's unparsed -> parsed): ``loader`` turns YAML into located raw data,
``resolver`` links names into these frozen objects. Nothing here does I/O. Every object keeps
the :class:`~framework.errors.Location` of the YAML node it came from, so that any later
check (graph rules, SQL parse checks, plan) can point at the line to fix.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, NamedTuple

from framework.errors import Location

NO_LOCATION = Location("<unknown>")

# Column types are BigQuery standard SQL names; each dialect maps them (see framework.sql).
COLUMN_TYPES = ("STRING", "INT64", "FLOAT64", "NUMERIC", "BOOL", "DATE", "TIMESTAMP", "DATETIME", "JSON", "BYTES")
COLUMN_MODES = ("NULLABLE", "REQUIRED", "REPEATED")


class Column(NamedTuple):
    """An output column. A NamedTuple (immutable, C-speed construction) because large
    projects have hundreds of thousands of them."""

    name: str
    type: str
    mode: str = "NULLABLE"
    description: str = ""
    location: Location = NO_LOCATION


@dataclass(frozen=True)
class EntityKind:
    """A kind of business entity (``player`` keyed by ``player_lookup``)."""

    name: str
    key: str
    type: str = "STRING"
    description: str = ""
    location: Location = NO_LOCATION


@dataclass(frozen=True)
class EntityMapping:
    """A change to an entity of ``source`` marks entities of ``target`` changed.

    The mapping table ``via`` (a processor's output or a source) holds both keys for the
    partition, e.g. a roster maps ``player_lookup`` -> ``team_abbr``.
    """

    source: str
    target: str
    via: str
    name: str = ""
    source_column: str | None = None  # column in ``via`` holding the source key (default: the kind's key)
    target_column: str | None = None  # column in ``via`` holding the target key (default: the kind's key)
    location: Location = NO_LOCATION


@dataclass(frozen=True)
class Table:
    """A warehouse table: ``dataset.name`` plus columns and physical layout."""

    dataset: str
    name: str
    columns: tuple[Column, ...]
    partition_by: str | None = None
    cluster_by: tuple[str, ...] = ()
    location: Location = NO_LOCATION

    @property
    def fqn(self) -> str:
        return f"{self.dataset}.{self.name}"

    def column(self, name: str) -> Column | None:
        for col in self.columns:
            if col.name == name:
                return col
        return None

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)


@dataclass(frozen=True)
class Source:
    """External data a first-phase processor reads (scraper landing tables, files)."""

    name: str
    table: Table
    entity: str | None = None
    description: str = ""
    change_columns: tuple[str, ...] | None = None  # None = all non-key columns
    location: Location = NO_LOCATION


@dataclass(frozen=True)
class Input:
    """One upstream of a processor: another processor or a declared source.

    ``compare`` overrides which of the upstream's columns count for change detection
    (default: the upstream's own ``change_detection.columns``). ``critical`` inputs must
    have rows for the partition or the run fails instead of producing output from nothing.
    """

    name: str
    kind: str  # "processor" | "source"
    critical: bool = False
    compare: tuple[str, ...] | None = None
    mapping: str | None = None  # name of the entity mapping used when kinds differ
    location: Location = NO_LOCATION
    # SQL expression of the entity key over the input's columns (``UPPER(TRIM(team_abbr))``)
    # when the transform normalises the key: detection renders the same expression.
    key: str | None = None


@dataclass(frozen=True)
class ChangeDetection:
    """Which output columns count as a change when downstream processors compare rows."""

    columns: tuple[str, ...] | None  # None means "all" non-key output columns
    enabled: bool = True
    location: Location = NO_LOCATION


@dataclass(frozen=True)
class Transform:
    """How the processor computes its output: a SQL file or a Python callable."""

    sql: str | None = None  # path relative to the project root
    python: str | None = None  # "package.module:function"
    location: Location = NO_LOCATION


@dataclass(frozen=True)
class FanOut:
    """Split a run into one task per entity, executed by a pool of workers over the bus."""

    task_topic: str
    workers: int = 4
    max_attempts: int = 3
    location: Location = NO_LOCATION


DATA_TEST_KINDS = ("not_null", "unique", "accepted_values", "relationships", "expression", "sql")


@dataclass(frozen=True)
class DataTest:
    """A data test on a processor's output, dbt's generic tests in processors.yaml.

    ``not_null`` (one column), ``unique`` (the combination of ``columns``), ``accepted_values``
    (``column`` in ``values``), ``relationships`` (``column`` found in ``to``'s ``field``),
    ``expression`` (a SQL predicate every row satisfies) and ``sql`` (a SELECT returning the
    failing rows). Each counts failing rows of the tested partition; ``severity: error``
    fails the run (and so blocks downstream as a failed critical processor does), ``warn``
    only reports."""

    name: str
    kind: str
    processor: str
    columns: tuple[str, ...] = ()
    values: tuple[Any, ...] = ()
    to: str | None = None  # processor or source (relationships)
    to_column: str | None = None  # its column (``field:`` in YAML)
    sql: str | None = None
    severity: str = "error"
    where: str | None = None
    location: Location = NO_LOCATION


@dataclass(frozen=True)
class Processor:
    """A unit of work in a phase, as declared: its inputs, output table, entity kind, change detection and transform."""

    name: str
    phase: str
    entity: str | None
    inputs: tuple[Input, ...]
    output: Table | None
    change_detection: ChangeDetection
    transform: Transform
    aliases: tuple[str, ...] = ()
    enabled: bool = True
    description: str = ""
    tags: tuple[str, ...] = ()  # free labels for selection (`--select tag:daily`), as dbt's
    fanout: FanOut | None = None
    tests: tuple[DataTest, ...] = ()
    # how long one execution may take (a run, or one fan-out task): sizes the Cloud Run
    # worker's request timeout and the push subscriptions' ack deadlines (framework.config.worker)
    timeout_seconds: int = 600
    location: Location = NO_LOCATION

    @property
    def output_table(self) -> str | None:
        return self.output.fqn if self.output else None


@dataclass(frozen=True)
class Tier:
    """Tiered timeout: after ``after_seconds`` since the first completion, ``min_complete`` suffice."""

    after_seconds: int
    min_complete: int
    location: Location = NO_LOCATION


@dataclass(frozen=True)
class QualityGate:
    """A blocking check before the transition triggers (e.g. a minimum row count)."""

    name: str
    processor: str
    min_rows: int = 1
    location: Location = NO_LOCATION


@dataclass(frozen=True)
class TriggerRule:
    """When a transition fires: all expected processors, a quorum of them, or tiered timeouts."""

    type: str  # "all" | "quorum" | "tiered"
    quorum: float | None = None
    tiers: tuple[Tier, ...] = ()
    location: Location = NO_LOCATION


@dataclass(frozen=True)
class Transition:
    """Policy of the transition from one phase to the next."""

    source_phase: str
    target_phase: str | None
    mode: str  # "trigger" | "monitor"
    expected: tuple[str, ...]
    critical: tuple[str, ...]
    rule: TriggerRule
    deadline_seconds: int | None
    completion_topic: str | None
    trigger_topic: str | None
    debounce_seconds: int = 120
    quality_gates: tuple[QualityGate, ...] = ()
    location: Location = NO_LOCATION
    # locations of sub-fields, e.g. "trigger_topic", "expected.2", "critical.0"
    field_locations: Mapping[str, Location] = field(default_factory=dict, compare=False, repr=False)

    @property
    def name(self) -> str:
        return f"{self.source_phase}->{self.target_phase or 'end'}"

    def loc(self, field_name: str) -> Location:
        """Location of a sub-field (falls back to the transition itself)."""
        return self.field_locations.get(field_name) or self.field_locations.get(field_name.split(".")[0]) or self.location


@dataclass(frozen=True)
class Phase:
    """An ordered stage of the pipeline and the policy of its transition to the next one."""

    name: str
    order: int
    dataset: str | None
    description: str = ""
    transition: Transition | None = None
    location: Location = NO_LOCATION


@dataclass(frozen=True)
class Subscription:
    """A declared subscription of a topic: who consumes it and its delivery settings."""

    name: str
    topic: str
    consumer: str
    ack_deadline_seconds: int = 60
    max_delivery_attempts: int = 5
    dead_letter_topic: str | None = None
    filter: str | None = None
    push_endpoint: str | None = None
    location: Location = NO_LOCATION


@dataclass(frozen=True)
class Topic:
    """A bus topic. ``producers``/``consumers`` are references such as ``processor:x``,
    ``phase:raw``, ``orchestrator:raw``, ``external:scrapers``."""

    name: str
    contract: str  # "completion" | "trigger" | "task" | "dead_letter"
    producers: tuple[str, ...]
    consumers: tuple[str, ...]
    subscriptions: tuple[Subscription, ...] = ()
    dead_letter_topic: str | None = None
    description: str = ""
    location: Location = NO_LOCATION


@dataclass(frozen=True)
class SweepSchedule:
    """When the sweeper runs without a new message (``sweep:`` in processors.yaml). On Google
    Cloud it becomes a Cloud Scheduler job publishing to ``topic`` (``pipectl apply``)."""

    schedule: str = "* * * * *"
    time_zone: str = "Etc/UTC"
    topic: str = ""  # "" = pipectl-sweep-<project>
    enabled: bool = True
    location: Location = NO_LOCATION


@dataclass(frozen=True)
class Project:
    """The whole resolved project. Lookups are dictionaries built once at resolve time."""

    root: Path
    name: str
    partition_column: str
    partition_type: str
    entity_kinds: Mapping[str, EntityKind]
    entity_mappings: tuple[EntityMapping, ...]
    sources: Mapping[str, Source]
    phases: tuple[Phase, ...]
    processors: Mapping[str, Processor]
    topics: Mapping[str, Topic]
    files: tuple[str, ...] = ()
    sweep: SweepSchedule = field(default_factory=SweepSchedule)
    # per-target name prefixes (pipectl.yaml `dataset_prefix`/`topic_prefix`), applied by
    # framework.manifest.prefix.with_prefixes: dev and prod in one cloud project
    dataset_prefix: str = ""
    topic_prefix: str = ""
    _aliases: Mapping[str, str] = field(default_factory=dict, repr=False)
    _tables: Mapping[str, str] = field(default_factory=dict, repr=False)

    def phase(self, name: str) -> Phase:
        for phase in self.phases:
            if phase.name == name:
                return phase
        raise KeyError(name)

    def phase_names(self) -> list[str]:
        return [p.name for p in self.phases]

    def processors_in(self, phase: str, enabled_only: bool = True) -> list[Processor]:
        return [p for p in self.processors.values() if p.phase == phase and (p.enabled or not enabled_only)]

    def next_phase(self, name: str) -> Phase | None:
        names = self.phase_names()
        idx = names.index(name)
        return self.phases[idx + 1] if idx + 1 < len(names) else None

    def resolve_processor(self, identity: str) -> Processor | None:
        """Map whatever a producer published (name, alias, ``dataset.table`` or bare table)
        to the declared processor. Returns None for unknown names: callers must alert."""
        if identity in self.processors:
            return self.processors[identity]
        name = self._aliases.get(identity) or self._tables.get(identity)
        return self.processors.get(name) if name else None

    def transitions(self) -> list[Transition]:
        return [p.transition for p in self.phases if p.transition is not None]

    def entity_key(self, processor: Processor) -> str | None:
        return self.entity_kinds[processor.entity].key if processor.entity else None
