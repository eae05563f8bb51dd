"""The SQL checks' entry points: the full check of ``pipectl validate``, the incremental
re-check of changed transform files, and column lineage for OpenLineage.

Apart from :mod:`framework.sql.checker` (what checks a processor or a statement) because
these decide how a run is laid out: which processors are checked, whether forked workers
check the transforms while this process checks the template statements
(:mod:`framework.sql.check_workers`), where each processor's diagnostics went
(:class:`Spans`, so that the next validate replaces one processor's part), and when the parse
cache is saved.
"""
from __future__ import annotations

from typing import Collection

from framework.errors import ConfigError
from framework.manifest.diagnostics import Diagnostics
from framework.manifest.model import Processor, Project
from framework.sql.checker import DEPLOYED, Checker, placeholders, schema_of
from framework.sql.dialects import DIALECTS
from framework.sql.parse_cache import LINEAGE_VERSION, ParseCache, parse_cache_for  # noqa: F401 - LINEAGE_VERSION re-exported
from framework.sql.parsing import parse_statement


def recheck_transforms(project: Project, names: list[str]) -> dict[str, tuple[Diagnostics, Diagnostics]]:
    """What the transform checks of ``names`` write, per processor (see ``Checker.recheck``):
    the manifests, templates and pipectl are those of the recorded run, only these
    processors' transform files changed."""
    checker = Checker(project, Diagnostics(), ParseCache(None))
    return {name: checker.recheck(project.processors[name]) for name in names}


def column_lineage(project: Project, proc: Processor) -> dict[str, list[tuple[str, str]]] | None:
    """Per output column of a SQL transform, the ``(table, column)`` pairs it is computed
    from: the lineage facts validate checks, for OpenLineage's columnLineage facet. None for
    a Python transform, or SQL that does not render or that sqlglot cannot qualify."""
    import jinja2

    from framework.sql.render import read_transform, render_transform, transform_globals

    if proc.transform.sql is None:
        return None
    tables: list[str] = []
    try:
        text = read_transform(project, proc)
        sql = render_transform(project, proc, DEPLOYED, False,
                               placeholders(transform_globals(project, proc, DEPLOYED, False), tables), text)
    except (jinja2.TemplateError, ConfigError, ValueError, TypeError, OSError):
        return None
    error, _named, _reads, facts, _derived = parse_statement(sql, DEPLOYED, schema=schema_of(project, tables))
    if error or not facts or "error" in facts:
        return None
    out: dict[str, list[tuple[str, str]]] = {}
    for name, col in facts["columns"].items():
        out[name] = [(tables[int(label)], column) for label, column in col["bases"]
                     if str(label).isdigit() and int(label) < len(tables)]
    return out


class Spans:
    """Where the transform checks wrote into a run's diagnostics, so that a later run can
    replace one processor's part and keep every other byte of the output.

    ``start``/``end``: ``(items, notes)`` counts before and after the transform checks (what
    comes before them, the manifest, rules and template checks, and after them is not theirs);
    ``render``/``report``: per processor, ``(items from, notes from, items to, notes to)`` of
    what rendering its transform, then reporting its parse, wrote; ``order``: the processors
    checked, in order. A full run writes every render part, then every report part."""

    def __init__(self) -> None:
        self.start: tuple[int, int] | None = None
        self.end: tuple[int, int] | None = None
        self.render: dict[str, tuple[int, int, int, int]] = {}
        self.report: dict[str, tuple[int, int, int, int]] = {}
        self.order: list[str] = []


def check_rendered_sql(project: Project, diags: Diagnostics, cache: ParseCache | None = None,
                       only: Collection[str] | None = None, spans: Spans | None = None, workers: int = 0) -> None:
    """Render every processor's statements in every dialect and parse them with sqlglot
    (``only``: the processors whose references resolve; see framework.graph.soundness;
    ``workers``: fork
    this many processes now to check the transforms, each rendering, parsing and reporting a
    share of them (framework.sql.check_workers: a cold run of a large project); ``spans``:
    filled with where each processor's transform check wrote)."""
    from framework.sql.check_workers import ForkedChecks

    cache = cache if cache is not None else parse_cache_for(project)
    checker = Checker(project, diags, cache)
    procs = [proc for proc in project.processors.values() if proc.transform.sql and (only is None or proc.name in only)]
    forked = ForkedChecks.start(checker, procs, workers)
    try:  # the template statements are checked here while the workers check the transforms
        for proc in project.processors.values():
            if only is not None and proc.name not in only:
                continue
            for dialect in DIALECTS:
                checker.processor(proc, dialect)
            if proc.transform.python and proc.enabled:
                diags.note("lineage", f"processor '{proc.name}': column lineage not analysed: Python transform "
                           f"({proc.transform.python}); its inputs are what it declares", proc.transform.location)
        if forked is not None:
            forked.finish(spans)
        else:
            checker.transforms(procs, spans)
    finally:
        if forked is not None:
            forked.close()
    cache.save()
