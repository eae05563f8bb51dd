"""Click parameter types that check CLI arguments against the project before anything runs.

A date is parsed by the project's partition type (``run --date tomorrow`` used to run
twelve processors and record a partition named "tomorrow"); a processor, phase, source
table or column name must be declared in the manifests, with a did-you-mean. A bad
argument is a usage error (``error: Invalid value for '--date': ...``, exit 2), never a
traceback and never a half-done run.

The manifests are loaded once per command line (cached on the root context) and only when
an argument needs them, so ``--help`` stays instant.
"""
from __future__ import annotations

from typing import Any

import click

from framework.commands import project_dir


def project_of(ctx: click.Context | None) -> Any:
    """The loaded, validated project of this command line (raises ManifestError: exit 1)."""
    from framework.project import load

    root = ctx.find_root() if ctx is not None else None
    cache = root.obj if root is not None and isinstance(root.obj, dict) else {}
    if "project" not in cache:
        cache["project"] = load(project_dir(ctx) if ctx is not None else ".")
    return cache["project"]


def _hint(name: str, candidates: Any) -> str:
    from framework.manifest.diagnostics import did_you_mean

    names = sorted(candidates)
    return did_you_mean(name, names) or (f"one of: {', '.join(names[:12])}" + (", ..." if len(names) > 12 else ""))


class PartitionType(click.ParamType):
    """A partition value of the project's ``partition.type`` (DATE: ``YYYY-MM-DD``)."""

    name = "partition"

    def __init__(self, partition_type: str | None = None):
        self.partition_type = partition_type  # fixed (the demo's example is DATE), else the project's

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str:
        from framework.manifest.partition import parse_partition

        try:
            return parse_partition(value, self.partition_type or project_of(ctx).partition_type)
        except ValueError as exc:
            self.fail(str(exc), param, ctx)


class ProcessorType(click.ParamType):
    """A declared processor (name, alias or output table); returns the declared name."""

    name = "processor"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str:
        project = project_of(ctx)
        proc = project.resolve_processor(str(value))
        if proc is None:
            self.fail(f"no processor '{value}' in processors.yaml ({_hint(str(value), project.processors)})", param, ctx)
        return proc.name


class PhaseType(click.ParamType):
    """A declared phase name."""

    name = "phase"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str:
        phases = project_of(ctx).phase_names()
        if value not in phases:
            self.fail(f"no phase '{value}' in processors.yaml ({_hint(str(value), phases)})", param, ctx)
        return str(value)


class TopicType(click.ParamType):
    """A topic declared in topics.yaml."""

    name = "topic"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str:
        topics = project_of(ctx).topics
        if value not in topics:
            self.fail(f"no topic '{value}' in topics.yaml ({_hint(str(value), topics)})", param, ctx)
        return str(value)


class SubscriptionType(click.ParamType):
    """A subscription declared in topics.yaml."""

    name = "subscription"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str:
        names = {s.name for t in project_of(ctx).topics.values() for s in t.subscriptions}
        if value not in names:
            self.fail(f"no subscription '{value}' in topics.yaml ({_hint(str(value), names)})", param, ctx)
        return str(value)


class SelectionType(click.ParamType):
    """A dbt-style selection expression (``a b`` union, ``a,b`` intersection, ``2+name+1``,
    ``@name``, ``stg_*``, ``tag:``/``path:``/``phase:``/``entity:``) that parses and names
    declared things; returned unchanged. Errors are usage errors (exit 2) with did-you-mean."""

    name = "selector"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str:
        from framework.graph.graph import PipelineGraph, SelectionError

        try:
            PipelineGraph(project_of(ctx)).select([str(value)])
        except SelectionError as exc:
            self.fail(str(exc), param, ctx)
        return str(value)


class EntityArg(click.ParamType):
    """``KEY=ID`` naming one entity (KEY an entity kind's key column or the kind's name,
    checked against processors.yaml with did-you-mean); a bare ``ID`` is an entity of the
    kind the project's sample hook edits (its ``UPDATE_DEFAULTS``). Returns an EntityRef."""

    name = "key=id"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        from framework.errors import ConfigError
        from framework.drive.updates import EntityRef, parse_entity, update_defaults

        if isinstance(value, EntityRef):
            return value
        project = project_of(ctx)
        try:
            default = update_defaults(project).kind if "=" not in str(value) else None
            return parse_entity(project, str(value), default,
                                option=param.opts[0] if param is not None and param.opts else "--entity")
        except ConfigError as exc:
            self.fail(exc.message + (f" ({exc.hint})" if exc.hint else ""), param, ctx)


SELECT_HELP = ("Processors (dbt grammar): space = union, comma = intersection, N+name+N depth, @name, "
               "wildcards, tag:/path:/phase:/entity:/source:. Repeatable. See docs/selection.md.")
EXCLUDE_HELP = "Remove these processors from the selection (same grammar as --select). Repeatable."


def resolve_selection(ctx: click.Context, selects: Any, excludes: Any, *, required: bool = False) -> list[str] | None:
    """Names chosen by ``--select``/``--exclude``, in topological order; None when neither
    was given (the command's default: everything). When ``required`` (commands that act),
    a selection that leaves nothing is a usage error: running nothing, or everything by
    accident, is never what was asked."""
    from framework.graph.graph import PipelineGraph, SelectionError

    selects, excludes = tuple(selects or ()), tuple(excludes or ())
    if not selects and not excludes:
        return None
    try:
        names = PipelineGraph(project_of(ctx)).select(selects, excludes)
    except SelectionError as exc:
        raise click.BadParameter(str(exc), param_hint="--select/--exclude") from exc
    if required and not names:
        raise click.UsageError("the selection (--select/--exclude) matches no processors; `pipectl ls` with the "
                               "same options shows what it selects")
    return names


def check_source_columns(ctx: click.Context, table: str | None, columns: Any, param_hint: str) -> None:
    """Columns of ``table`` (a declared source: name, ``dataset.table`` or bare table) that
    a command will write; an unknown table or column is a usage error with did-you-mean.
    ``table=None`` (the sample hook's default table) is checked by the hook itself."""
    if table is None:
        return
    project = project_of(ctx)
    found = None
    for src in project.sources.values():
        if table in (src.name, src.table.fqn, src.table.name):
            found = src
            break
    if found is None:
        labels = {s.table.name for s in project.sources.values()}
        raise click.BadParameter(f"no source table '{table}' in processors.yaml ({_hint(table, labels)})", param_hint="--table")
    declared = [c.name for c in found.table.columns]
    for column in columns:
        if column not in declared:
            raise click.BadParameter(f"table '{found.table.fqn}' has no column '{column}' ({_hint(column, declared)})",
                                     param_hint=param_hint)


PARTITION = PartitionType()
DATE = PartitionType("DATE")
PROCESSOR = ProcessorType()
PHASE = PhaseType()
SELECTION = SelectionType()
ENTITY = EntityArg()
TOPIC = TopicType()
SUBSCRIPTION = SubscriptionType()
