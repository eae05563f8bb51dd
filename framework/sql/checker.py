"""The SQL checker of ``pipectl validate``: parse every rendered statement with sqlglot.

A template or manifest that renders invalid SQL is caught before deploy, with a located
diagnostic at the processor (its transform for transform errors): an unknown ``ref()``
name, a Jinja syntax error in a transform file, a statement sqlglot cannot parse in its
dialect, or a transform whose SELECT lacks some output columns.

Cost control (validate runs on manifests of 10,000 processors): the template statements
(detect, filter, record, ddl, merge) differ between processors only in identifiers, which
are schema-checked names (quoted when reserved), so they are rendered and parsed once per
*shape* (dialect + input scopes + table layout). Transforms are rendered per processor (to
catch unknown refs) and file read once; ``ref()``/``source()`` return numbered placeholders
(numbered in order of first use, so the text and its cache key are the same every run), so
transforms that differ only in the tables they read are parsed once. A transform whose
dialects differ only through ``{{ partition }}`` and ``{{ entity_filter() }}`` is rendered
and parsed once, in BigQuery: the lineage facts come from that tree, and its DuckDB form is
derived from it; the distinct statements still to parse go to a process pool when there are
many (framework.sql.parsing).

The entry points (:func:`framework.sql.checks.check_rendered_sql`, the incremental re-check,
OpenLineage's column lineage) and the record of where each processor's check wrote
(:class:`~framework.sql.checks.Spans`) live in :mod:`framework.sql.checks`; this module is
what checks one processor or one statement, and what a forked worker
(:mod:`framework.sql.check_workers`) runs.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Iterator

from framework.errors import ConfigError, Location
from framework.manifest.diagnostics import Diagnostics
from framework.manifest.model import Processor, Project
from framework.sql.dialects import DIALECTS, get_dialect
from framework.sql.parse_cache import ParseCache
from framework.sql.parsing import PLACEHOLDER, POOL_MIN_JOBS, first_line as _first_line, iter_parse, parse_statement

if TYPE_CHECKING:
    from framework.sql.checks import Spans

DEPLOYED = "bigquery"  # the dialect transforms are parsed in; the other is derived from its tree


class Checker:
    """One validate run's SQL checks: template statements per shape, transforms per
    processor, each distinct statement parsed once (cached), diagnostics deduplicated."""

    def __init__(self, project: Project, diags: Diagnostics, cache: ParseCache | None = None):
        import sqlglot  # heavy: only when SQL checks run

        self.sqlglot = sqlglot
        self.project = project
        self.diags = diags
        self.cache = cache if cache is not None else ParseCache(None)
        self.shapes: dict[tuple, str | None] = {}
        self.scopes: dict[str, tuple | None] = {}
        self.reported: set[tuple[str, ...]] = set()
        self.bad_transforms: set[str] = set()
        # output columns whose expression lineage keeps (entity keys: key normalisation)
        self.key_columns = frozenset(k.key for k in project.entity_kinds.values())

    # ---------------------------------------------------------------- reporting
    def _error(self, proc: Processor, code: str, message: str, location: Location, hint: str | None = None) -> None:
        key = (proc.name, code, message)
        if key not in self.reported:
            self.reported.add(key)
            self.diags.error(code, message, location, hint)

    def _parse(self, sql: str, dialect: str, reads: bool = False, schema: dict | None = None, derive: str | None = None) -> tuple:
        """(error message or None, named columns of the last SELECT or None if unknown,
        columns read through ref()'d tables when ``reads``, lineage facts when ``schema``
        is given (see framework.sql.lineage), error deriving the ``derive`` dialect or None).
        Results are cached by the statement's text (and the schema of the tables it reads),
        in memory and across runs (ParseCache)."""
        key = self.cache.key(dialect, sql, reads, self._key_schema(schema), derive)
        hit = self.cache.get(key)
        if hit is not None:
            return hit
        result = self._parse_uncached(sql, dialect, reads, schema, derive)
        self.cache.put(key, result)
        return result

    def _key_schema(self, schema: dict | None) -> dict | None:
        """What lineage facts depend on besides the text: the tables' columns and the key names."""
        return schema and {"tables": schema, "keys": sorted(self.key_columns)}

    def _parse_uncached(self, sql: str, dialect: str, reads: bool, schema: dict | None = None, derive: str | None = None) -> tuple:
        return parse_statement(*self._work(sql, dialect, reads, schema, derive))

    def _work(self, sql: str, dialect: str, reads: bool, schema: dict | None = None, derive: str | None = None) -> tuple:
        """The arguments of :func:`parse_statement` (sqlglot's dialect names): a pool task."""
        return sql, get_dialect(dialect).sqlglot, reads, schema, get_dialect(derive).sqlglot if derive else None, self.key_columns

    # ---------------------------------------------------------------- template shapes
    def _shape(self, proc: Processor, signature: tuple, render: Any, what: str, dialect: str) -> None:
        if signature in self.shapes:
            return
        import jinja2

        try:
            sql = render()
        except (jinja2.TemplateError, ConfigError, ValueError) as exc:
            self.shapes[signature] = msg = f"{what} ({dialect}) does not render: {_first_line(str(exc))}"
            self._error(proc, "sql-render", f"processor '{proc.name}': {msg}", proc.location, "fix the template override or the manifest; see `pipectl render`")
            return
        error = self._parse(sql, dialect)[0]
        self.shapes[signature] = error
        if error:
            self._error(proc, "sql-parse", f"processor '{proc.name}': {what} ({dialect}) renders SQL that does not parse: {error}",
                        proc.location, f"see it with `pipectl render {proc.name} --dialect {dialect}`")

    def processor(self, proc: Processor, dialect: str) -> None:
        from framework.sql.context import input_specs
        from framework.sql.render import transform_globals, render_record, render_statement, render_template

        p = self.project
        if proc.inputs:
            if proc.name not in self.scopes:  # once per processor, not per dialect
                try:
                    specs = input_specs(p, proc)
                except ConfigError as exc:
                    self._error(proc, "sql-render", f"processor '{proc.name}': change detection cannot be rendered: {exc.message}",
                                exc.location or proc.location, exc.hint)
                    specs = None
                self.scopes[proc.name] = None if specs is None else tuple(
                    (s.scope, s.mapping_partitioned, bool(s.row_columns), s.key_sql) for s in specs)
            scopes = self.scopes[proc.name]
            if scopes is not None:
                for kind in ("detect", "filter"):
                    self._shape(proc, (kind, dialect, scopes), lambda k=kind: render_statement(p, proc, k, dialect).sql, f"{kind}.sql.j2", dialect)
                for selective, unknown in ((False, False), (True, False), (True, True)):
                    self._shape(proc, ("record", dialect, scopes, selective, unknown),
                                lambda s=selective, u=unknown: render_record(p, proc, dialect, s, unknown=u).sql,
                                "record.sql.j2", dialect)
        out = proc.output
        if out is not None:
            ptype = next((c.type for c in out.columns if c.name == out.partition_by), None)
            layout = (ptype, bool(out.cluster_by), tuple(sorted({c.mode for c in out.columns})))
            self._shape(proc, ("ddl", dialect, layout), lambda: render_statement(p, proc, "ddl", dialect).sql, "ddl.sql.j2", dialect)
            key = p.entity_key(proc)
            key = key if key and out.column(key) is not None else None
            for full in (False, True):
                merge_sig = ("merge", dialect, out.column(p.partition_column) is not None, key is not None, full)
                self._shape(proc, merge_sig, lambda f=full: render_template(
                    p, "merge.sql.j2", dialect, processor=proc.name, table=out.fqn, columns=list(out.column_names),
                    partition_in_output=out.column(p.partition_column) is not None, key=key, full_batch=f,
                    transform_sql="SELECT " + ", ".join(f"NULL AS {get_dialect(dialect).ident(c)}" for c in out.column_names),
                    entity_filter=transform_globals(p, proc, dialect, f)["entity_filter"]).sql, "merge.sql.j2", dialect)
        fragments = ("transform-fragments", dialect, proc.entity is not None)
        if proc.transform.sql and fragments not in self.shapes:  # what differs between dialects in a derived transform
            def fragment() -> str:
                globals_ = transform_globals(p, proc, dialect, False)
                return f"SELECT 1 AS x FROM t WHERE t.d = {globals_['partition']} AND {globals_['entity_filter']('t.k')}"

            self._shape(proc, fragments, fragment, "_dialect.sql.j2 (partition, entity_filter)", dialect)

    # ---------------------------------------------------------------- transforms
    def render_transform(self, proc: Processor) -> list[tuple] | None:
        """Read the transform once and render it with placeholder tables: one job per
        dialect to parse, or one job (BigQuery, deriving DuckDB) when the text is
        dialect-free. None when it does not render (reported)."""
        import jinja2

        from framework.sql.render import transform_globals, dialect_free, read_transform, render_transform

        p = self.project
        loc = proc.transform.location
        try:
            text = read_transform(p, proc)
        except ConfigError as exc:
            if (p.root / proc.transform.sql).exists():
                self._error(proc, "sql-render", exc.message, exc.location or loc, exc.hint)
            return None  # a missing file is reported by the missing-transform rule
        derive = dialect_free(text)
        dialects = [DEPLOYED] if derive else [DEPLOYED] + [d for d in DIALECTS if d != DEPLOYED]
        jobs = []
        for dialect in dialects:
            tables: list[str] = []
            try:
                sql = render_transform(p, proc, dialect, False, placeholders(transform_globals(p, proc, dialect, False), tables), text)
            except jinja2.TemplateSyntaxError as exc:
                self._error(proc, "sql-render", f"processor '{proc.name}': {proc.transform.sql}:{exc.lineno}: Jinja syntax error: {exc.message}", loc)
                return None
            except (jinja2.TemplateError, ConfigError, ValueError, TypeError) as exc:
                self._error(proc, "sql-render", f"processor '{proc.name}': transform {proc.transform.sql} does not render: {_first_line(str(exc))}",
                            loc, "ref() takes a processor name, source() a declared source; see docs/change-detection.md")
                return None
            deployed = dialect == DEPLOYED  # uncompared reads and lineage: once per processor, in the dialect users deploy
            others = [d for d in DIALECTS if d != dialect] if derive else []
            jobs.append((proc, dialect, sql, deployed, schema_of(p, tables) if deployed else None, others[0] if others else None, tables))
        return jobs

    def report_transform(self, job: tuple, result: tuple) -> None:
        proc, dialect, _key, deployed, derived, tables = job
        error, named, reads, facts, derived_error = result
        loc = proc.transform.location
        for bad, in_dialect, how in ((error, dialect, ""), (derived_error, derived, f" (derived from its {dialect} parse)")):
            if bad and proc.name not in self.bad_transforms:  # one parse error per transform is enough
                self.bad_transforms.add(proc.name)
                self._error(proc, "sql-parse", f"processor '{proc.name}': transform {proc.transform.sql} is not valid {in_dialect} SQL{how}: {bad}",
                            loc, f"see it with `pipectl render {proc.name} --kind transform --dialect {in_dialect}`")
        if error or not deployed:
            return
        self._uncompared_reads(proc, reads, tables)
        from framework.sql.lineage_rules import LineageRules, check_output_columns

        rules = LineageRules(self.project, proc, facts or {}, tables, lambda code, msg, where, hint: self._error(proc, code, msg, where, hint))
        check_output_columns(rules, named)
        if facts is None or "error" in facts:
            why = facts["error"] if facts else "the SELECT uses *"
            self.diags.note("lineage", f"processor '{proc.name}': column lineage not analysed: {why}", loc)
            return
        rules.run()

    def transforms(self, procs: list[Processor], spans: Spans | None = None) -> None:
        """Render every transform, parse each distinct statement once (on a process pool
        when many are not cached), then report per processor. (A cold run of a large project
        checks whole processors on forked workers instead: framework.sql.check_workers.)

        Memory stays flat at 10,000 processors: a job keeps its cache key, not its text or
        the schema it was checked against; parse results go into the cache (compact) as the
        pool returns them, and each is expanded again only while its processor is reported.
        ``spans`` learns which diagnostics each processor's check wrote (see :class:`Spans`)."""
        jobs: list[tuple] = []
        todo: dict[str, tuple] = {}
        d = self.diags
        if spans is not None:
            spans.start = (len(d.items), len(d.notes))

        def rendered() -> Iterator[tuple[str, tuple]]:
            """(cache key, parse job) of each statement not parsed yet, once."""
            for proc in procs:
                before = (len(d.items), len(d.notes))
                for proc_, dialect, sql, deployed, schema, derived, tables in self.render_transform(proc) or []:
                    key = self.cache.key(dialect, sql, deployed, self._key_schema(schema), derived)
                    jobs.append((proc_, dialect, key, deployed, derived, tables))
                    if key not in todo and not self.cache.has(key):
                        todo[key] = (sql, dialect, deployed, schema, derived)
                        yield key, self._work(sql, dialect, deployed, schema, derived)
                if spans is not None:
                    spans.order.append(proc.name)
                    spans.render[proc.name] = before + (len(d.items), len(d.notes))

        for _ in rendered():
            pass
        if len(todo) >= POOL_MIN_JOBS:  # fewer: parsed one by one below, as they are reported
            for key, result in zip(list(todo), iter_parse([self._work(*job) for job in todo.values()])):
                self.cache.put(key, result)
                del todo[key]
        for job in jobs:
            key = job[2]
            result = self.cache.get(key)
            if result is None:
                result = self._parse_uncached(*todo[key])
                self.cache.put(key, result)
            before = (len(d.items), len(d.notes))
            self.report_transform(job, result)
            if spans is not None:
                name = job[0].name
                start = spans.report.get(name, before)[:2]  # a processor's jobs are consecutive
                spans.report[name] = start + (len(d.items), len(d.notes))
        if spans is not None:
            spans.end = (len(d.items), len(d.notes))

    def check_alone(self, proc: Processor) -> tuple[Diagnostics, Diagnostics | None, list[tuple[str, bytes]]]:
        """One processor's transform check on its own: what rendering it wrote, what reporting
        its parses wrote (None when nothing was parsed: it did not render), and the parse-cache
        entries it added. A full run writes every processor's render part, then every report
        part; an incremental validate puts these in place of the recorded ones; forked workers
        (framework.sql.check_workers) return them for their share of the processors."""
        rendered, reported = Diagnostics(), Diagnostics()
        self.diags = rendered
        jobs = self.render_transform(proc) or []
        self.diags = reported
        entries: list[tuple[str, bytes]] = []
        for proc_, dialect, sql, deployed, schema, derived, tables in jobs:
            key = self.cache.key(dialect, sql, deployed, self._key_schema(schema), derived)
            if not self.cache.has(key):
                self.cache.put(key, self._parse_uncached(sql, dialect, deployed, schema, derived))
                entries.append((key, self.cache.entries[key]))
            self.report_transform((proc_, dialect, key, deployed, derived, tables), self.cache.get(key))
        return rendered, (reported if jobs else None), entries

    def recheck(self, proc: Processor) -> tuple[Diagnostics, Diagnostics]:
        """The diagnostics one processor's transform check writes (what it renders, then what
        its report says), on their own: an incremental validate puts them in place of that
        processor's recorded ones."""
        rendered, reported, _ = self.check_alone(proc)
        return rendered, reported if reported is not None else Diagnostics()

    def _uncompared_reads(self, proc: Processor, reads: tuple, tables: list[str]) -> None:
        """Warn when a transform reads an upstream column that the upstream's change
        detection ignores: an edit there never reaches this processor, so an incremental
        run would silently differ from a full recompute."""
        p = self.project
        inputs = {i.name: i for i in proc.inputs if i.kind == "processor"}
        by_table: dict[int, set[str]] = {}
        for index, column in reads:
            by_table.setdefault(index, set()).add(column)
        kind_keys = {k.key for k in p.entity_kinds.values()}
        for index, columns in sorted(by_table.items()):
            if index >= len(tables):
                continue
            up = p.resolve_processor(tables[index])
            inp = inputs.get(up.name) if up is not None else None
            if up is None or inp is None or up.output is None:
                continue
            if "*" in columns:
                columns = (columns - {"*"}) | set(up.output.column_names)
            compared = set(inp.compare or up.change_detection.columns or up.output.column_names)
            free = {p.partition_column, p.entity_key(up)} | kind_keys
            for col in sorted(columns - compared - free):
                if up.output.column(col) is None:
                    continue
                key2 = (proc.name, "uncompared-read", col, up.name)
                if key2 in self.reported:
                    continue
                self.reported.add(key2)
                self.diags.warning("uncompared-read",
                                   f"processor '{proc.name}' reads {up.name}.{col}, which the change detection of that input ignores: "
                                   "an edit there never reaches it incrementally", inp.location,
                                   f"add '{col}' to {up.name}'s change_detection.columns or to this input's compare")


def schema_of(project: Project, tables: list[str]) -> dict[str, dict[str, str]]:
    """Declared columns and types of every placeholder table (``"0"`` -> {column: type})."""
    out: dict[str, dict[str, str]] = {}
    by_fqn = {s.table.fqn: s.table for s in project.sources.values()}
    for i, fqn in enumerate(tables):
        up = project.resolve_processor(fqn)
        table = up.output if up is not None and up.output is not None and up.output.fqn == fqn else by_fqn.get(fqn)
        if table is not None:
            out[str(i)] = {c.name: c.type for c in table.columns}
    return out


def placeholders(globals_: dict[str, Any], tables: list[str]) -> dict[str, Any]:
    """Wrap ref()/source(): the real function still checks the name (unknown ref -> error),
    the SQL gets ``__ref<i>.__t`` with ``i`` the table's order of first use, and ``tables``
    learns which table each placeholder stands for."""
    wrapped = dict(globals_)
    for name in ("ref", "source"):
        fn = globals_[name]

        def record(arg: str, _fn: Any = fn) -> str:
            table = _fn(arg)
            if table not in tables:
                tables.append(table)
            return PLACEHOLDER.format(index=tables.index(table))

        wrapped[name] = record
    return wrapped
