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
    from framework.project import load, share

    root = ctx.find_root() if ctx is not None else None
    cache = root.obj if root is not None and isinstance(root.obj, dict) else {}
    if "project" not in cache:
        cache["project"] = load(project_dir(ctx) if ctx is not None else ".")
        if root is not None:  # the command's other loads of this root reuse it, until it ends
            root.call_on_close(share(cache["project"]))
    return cache["project"]


def completion_project(ctx: click.Context | None) -> Any:
    """The project for shell completion, or None: completion must never print an error into
    the user's prompt. The root options (``-p``) are parsed but their callbacks did not run,
    so the folder comes from the parsed parameters."""
    from framework.errors import PipectlError
    from framework.project import load

    root = ctx.find_root() if ctx is not None else None
    folder = (root.params.get("project_dir") if root is not None else None) or "."
    try:
        return load(folder)
    except (PipectlError, OSError, ValueError):
        return None


def complete_from(names: Any, incomplete: str, help_of: Any = None) -> list[Any]:
    """``CompletionItem`` for each name starting with ``incomplete`` (sorted, unique)."""
    from click.shell_completion import CompletionItem

    return [CompletionItem(n, help=help_of(n) if help_of else None)
            for n in sorted(set(names)) if str(n).startswith(incomplete)]


def complete_target(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[Any]:
    """Targets of the project's pipectl.yaml (``-t``)."""
    from framework.config import load_config
    from framework.errors import PipectlError

    folder = ctx.find_root().params.get("project_dir") or "."
    try:
        targets = list(load_config(folder).targets)
    except (PipectlError, OSError, ValueError):
        targets = []
    return complete_from(targets or ["local"], incomplete)


def _hint(name: str, candidates: Any) -> str:
    from framework.manifest.diagnostics import did_you_mean

    names = sorted(candidates)
    return did_you_mean(name, names) or (f"one of: {', '.join(names[:12])}" + (", ..." if len(names) > 12 else ""))


def _processor_help(project: Any, name: str) -> str:
    proc = project.resolve_processor(name)
    return f"{proc.phase}" + (f" (alias of {proc.name})" if proc.name != name else "") if proc else ""


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

    def shell_complete(self, ctx: click.Context, param: click.Parameter, incomplete: str) -> list[Any]:
        project = completion_project(ctx)
        if project is None:
            return []
        names = [n for p in project.processors.values() for n in (p.name, *p.aliases)]
        return complete_from(names, incomplete, lambda n: _processor_help(project, n))


class PhaseType(click.ParamType):
    """A declared phase name."""

    name = "phase"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str:
        phases = project_of(ctx).phase_names()
        if value not in phases:
            self.fail(f"no phase '{value}' in processors.yaml ({_hint(str(value), phases)})", param, ctx)
        return str(value)

    def shell_complete(self, ctx: click.Context, param: click.Parameter, incomplete: str) -> list[Any]:
        project = completion_project(ctx)
        return complete_from(project.phase_names(), incomplete) if project is not None else []


class TopicType(click.ParamType):
    """A topic declared in topics.yaml."""

    name = "topic"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str:
        topics = project_of(ctx).topics
        if value not in topics:
            self.fail(f"no topic '{value}' in topics.yaml ({_hint(str(value), topics)})", param, ctx)
        return str(value)

    def shell_complete(self, ctx: click.Context, param: click.Parameter, incomplete: str) -> list[Any]:
        project = completion_project(ctx)
        return complete_from(project.topics, incomplete) if project is not None else []


class SubscriptionType(click.ParamType):
    """A subscription declared in topics.yaml."""

    name = "subscription"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str:
        names = {s.name for t in project_of(ctx).topics.values() for s in t.subscriptions}
        if value not in names:
            self.fail(f"no subscription '{value}' in topics.yaml ({_hint(str(value), names)})", param, ctx)
        return str(value)

    def shell_complete(self, ctx: click.Context, param: click.Parameter, incomplete: str) -> list[Any]:
        project = completion_project(ctx)
        if project is None:
            return []
        return complete_from([s.name for t in project.topics.values() for s in t.subscriptions], incomplete)


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

    def shell_complete(self, ctx: click.Context, param: click.Parameter, incomplete: str) -> list[Any]:
        """Processor names and aliases (with ``+``/``@`` operators kept), the methods
        (``tag:``, ``phase:`` ...) and, after a method, its values from the project."""
        from framework.graph.selector import METHODS, transform_path

        project = completion_project(ctx)
        if project is None:
            return []
        head, _, word = incomplete.rpartition(",")  # complete the last term of an intersection
        head = head + "," if _ or head else ""
        ops = ""
        while word[:1] in ("+", "@") or word[:1].isdigit() and "+" in word:
            cut = word.index("+") + 1 if word[:1].isdigit() else 1
            ops, word = ops + word[:cut], word[cut:]
        method, colon, value = word.partition(":")
        if colon and method in METHODS:
            values = {
                "name": [p.name for p in project.processors.values()],
                "tag": [t for p in project.processors.values() for t in p.tags],
                "phase": project.phase_names(),
                "entity": list(project.entity_kinds),
                "source": list(project.sources),
                "path": [path for p in project.processors.values() if (path := transform_path(p))],
            }.get(method, [])
            return complete_from([f"{head}{ops}{method}:{v}" for v in values], incomplete)
        names = [n for p in project.processors.values() for n in (p.name, *p.aliases)]
        return complete_from([f"{head}{ops}{n}" for n in names] + [f"{head}{ops}{m}:" for m in METHODS if m != "name"],
                             incomplete)


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

    def shell_complete(self, ctx: click.Context, param: click.Parameter, incomplete: str) -> list[Any]:
        """``KEY=`` for each entity kind's key column (the id is the user's)."""
        project = completion_project(ctx)
        if project is None:
            return []
        keys = {f"{k.key}=": k.name for k in project.entity_kinds.values()}
        return complete_from(keys, incomplete, lambda key: f"a {keys[key]} id")


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
