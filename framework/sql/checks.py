"""Parse every rendered statement with sqlglot during ``pipectl validate``.

A template or manifest that renders invalid SQL is caught before deploy, with a located
diagnostic at the processor (its transform for transform errors): an unknown ``ref()``
name, a Jinja syntax error in a transform file, a statement sqlglot cannot parse in its
dialect, or a transform whose SELECT lacks some output columns.

Cost control (validate runs on manifests of 10,000 processors): the template statements
(detect, filter, record, ddl, merge) differ between processors only in identifiers, which
are schema-checked names (quoted when reserved), so they are rendered and parsed once per
*shape* (dialect + input scopes + table layout). Transforms are rendered per processor (to
catch unknown refs); before parsing, the table names that ``ref()``/``source()`` returned
are replaced by placeholders, so transforms that differ only in the tables they read are
parsed once.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import re
from pathlib import Path
from typing import Any

from framework.errors import ConfigError, Location
from framework.manifest.diagnostics import Diagnostics
from framework.manifest.model import Processor, Project
from framework.sql.dialects import DIALECTS, get_dialect

log = logging.getLogger(__name__)
# Part of every cache key: bump it when the lineage facts change shape.
LINEAGE_VERSION = 2


class _Checker:
    def __init__(self, project: Project, diags: Diagnostics, cache: "ParseCache | None" = None):
        import sqlglot  # heavy: only when SQL checks run

        self.sqlglot = sqlglot
        self.project = project
        self.diags = diags
        self.cache = cache if cache is not None else ParseCache(None)
        self.shapes: dict[tuple, str | None] = {}
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

    def _parse(self, sql: str, dialect: str, reads: bool = False, schema: dict | None = None) -> tuple:
        """(error message or None, named columns of the last SELECT or None if unknown,
        columns read through ref()'d tables when ``reads``, lineage facts when ``schema``
        is given: see framework.sql.lineage). Results are cached by the statement's text
        (and the schema of the tables it reads), in memory and across runs (ParseCache)."""
        key = self.cache.key(dialect, sql, reads, schema and {"tables": schema, "keys": sorted(self.key_columns)})
        hit = self.cache.get(key)
        if hit is not None:
            return hit
        result = self._parse_uncached(sql, dialect, reads, schema)
        self.cache.put(key, result)
        return result

    def _parse_uncached(self, sql: str, dialect: str, reads: bool, schema: dict | None = None) -> tuple:
        from sqlglot import exp
        from sqlglot.errors import SqlglotError

        try:
            trees = [t for t in self.sqlglot.parse(sql, read=get_dialect(dialect).sqlglot) if t is not None]
        except SqlglotError as exc:
            return _first_line(str(exc)), None, (), None
        if not trees:
            return "renders no SQL statement", None, (), None
        read_columns = _qualified_reads(trees) if reads else ()
        last = trees[-1]
        named = None
        if isinstance(last, exp.Query) and not any(isinstance(s, exp.Star) or s.find(exp.Star) for s in last.selects):
            named = tuple(last.named_selects)
        facts = None
        if schema is not None:  # last: lineage rewrites the tree in place (one parse per transform)
            from framework.sql.lineage import analyze

            facts = analyze(last, get_dialect(dialect).sqlglot, schema, self.key_columns)
        return None, named, read_columns, facts

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
        from framework.sql.render import _transform_globals, render_record, render_statement, render_template

        p = self.project
        if proc.inputs:
            try:
                specs = input_specs(p, proc)
            except ConfigError as exc:
                self._error(proc, "sql-render", f"processor '{proc.name}': change detection cannot be rendered: {exc.message}",
                            exc.location or proc.location, exc.hint)
                specs = None
            if specs is not None:
                scopes = tuple((s.scope, s.mapping_partitioned, bool(s.row_columns), s.key_sql) for s in specs)
                for kind in ("detect", "filter"):
                    self._shape(proc, (kind, dialect, scopes), lambda k=kind: render_statement(p, proc, k, dialect).sql, f"{kind}.sql.j2", dialect)
                for selective in (False, True):
                    self._shape(proc, ("record", dialect, scopes, selective), lambda s=selective: render_record(p, proc, dialect, s).sql, "record.sql.j2", dialect)
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
                    entity_filter=_transform_globals(p, proc, dialect, f)["entity_filter"]).sql, "merge.sql.j2", dialect)
        if proc.transform.sql:
            self.transform(proc, dialect)

    # ---------------------------------------------------------------- transforms
    def transform(self, proc: Processor, dialect: str) -> None:
        import jinja2

        from framework.sql.render import _transform_globals, render_transform

        p = self.project
        loc = proc.transform.location
        if not (p.root / proc.transform.sql).is_file():
            return  # reported by the missing-transform rule
        used: list[str] = []
        globals_ = _transform_globals(p, proc, dialect, False)
        try:
            sql = render_transform(p, proc, dialect, False, _recording(globals_, used))
        except jinja2.TemplateSyntaxError as exc:
            self._error(proc, "sql-render", f"processor '{proc.name}': {proc.transform.sql}:{exc.lineno}: Jinja syntax error: {exc.message}", loc)
            return
        except (jinja2.TemplateError, ConfigError, ValueError, TypeError) as exc:
            self._error(proc, "sql-render", f"processor '{proc.name}': transform {proc.transform.sql} does not render: {_first_line(str(exc))}",
                        loc, "ref() takes a processor name, source() a declared source; see docs/change-detection.md")
            return
        tables = sorted(set(used), key=len, reverse=True)
        normalized = sql
        for i, table in enumerate(tables):
            normalized = normalized.replace(table, f"__ref{i}.__t")  # stays an identifier even inside a longer name
        deployed = dialect == "bigquery"  # uncompared reads and lineage: once per processor, in the dialect users deploy
        schema = _schema_of(p, tables) if deployed else None
        error, named, reads, facts = self._parse(normalized, dialect, reads=deployed, schema=schema)
        if error:
            if proc.name in self.bad_transforms:
                return  # one parse error per transform is enough (the other dialect usually agrees)
            self.bad_transforms.add(proc.name)
            self._error(proc, "sql-parse", f"processor '{proc.name}': transform {proc.transform.sql} is not valid {dialect} SQL: {error}",
                        loc, f"see it with `pipectl render {proc.name} --kind transform --dialect {dialect}`")
            return
        if not deployed:
            return
        self._uncompared_reads(proc, reads, tables)
        from framework.sql.lineage_rules import LineageRules, check_output_columns

        rules = LineageRules(p, proc, facts or {}, tables, lambda code, msg, where, hint: self._error(proc, code, msg, where, hint))
        check_output_columns(rules, named)
        if facts is None or "error" in facts:
            why = facts["error"] if facts else "the SELECT uses *"
            self.diags.note("lineage", f"processor '{proc.name}': column lineage not analysed: {why}", loc)
            return
        rules.run()

    def _uncompared_reads(self, proc: Processor, reads: tuple, tables: list[str]) -> None:
        """Warn when a transform reads an upstream column that the upstream's change
        detection ignores: an edit there never reaches this processor, so an incremental
        run would silently differ from a full recompute."""
        p = self.project
        inputs = {i.name: i for i in proc.inputs if i.kind == "processor"}
        for index, column in reads:
            if index >= len(tables):
                continue
            up = p.resolve_processor(tables[index])
            inp = inputs.get(up.name) if up is not None else None
            if up is None or inp is None or up.output is None:
                continue
            if column == "*":
                columns = set(up.output.column_names)
            else:
                columns = {column}
            compared = set(inp.compare or up.change_detection.columns or up.output.column_names)
            free = {p.partition_column, p.entity_key(up)} | {k.key for k in p.entity_kinds.values()}
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


def _qualified_reads(trees: list) -> tuple[tuple[int, str], ...]:
    """(placeholder index, column) for every column read through an alias of a ref()'d table."""
    from sqlglot import exp

    reads: set[tuple[int, str]] = set()
    for tree in trees:
        for table in tree.find_all(exp.Table):
            if not table.db.startswith("__ref") or table.name != "__t":
                continue
            index = int(table.db[len("__ref"):])
            alias = table.alias_or_name
            select = table.parent_select
            if select is None:
                continue
            sources = [t for t in select.find_all(exp.Table) if t.parent_select is select]
            only_source = len(sources) == 1 and not select.args.get("joins")
            for col in select.find_all(exp.Column):
                if col.table == alias or (only_source and not col.table and col.parent_select is select):
                    reads.add((index, "*" if isinstance(col.this, exp.Star) else col.name))
    return tuple(sorted(reads))


def _schema_of(project: Project, tables: list[str]) -> dict[str, dict[str, str]]:
    """Declared columns and types of every placeholder table (``"0"`` -> {column: type})."""
    out: dict[str, dict[str, str]] = {}
    by_fqn = {s.table.fqn: s.table for s in project.sources.values()}
    for i, fqn in enumerate(tables):
        up = project.resolve_processor(fqn)
        table = up.output if up is not None and up.output is not None and up.output.fqn == fqn else by_fqn.get(fqn)
        if table is not None:
            out[str(i)] = {c.name: c.type for c in table.columns}
    return out


def _recording(globals_: dict[str, Any], used: list[str]) -> dict[str, Any]:
    """Wrap ref()/source() so the checker learns which table names the transform pasted."""
    wrapped = dict(globals_)
    for name in ("ref", "source"):
        fn = globals_[name]

        def record(arg: str, _fn: Any = fn) -> str:
            table = _fn(arg)
            used.append(table)
            return table

        wrapped[name] = record
    return wrapped


def _first_line(text: str) -> str:
    line = text.strip().splitlines()[0] if text.strip() else text
    return re.sub(r"\x1b\[[0-9;]*m", "", line)


class ParseCache:
    """Parse results by statement text, kept across runs in ``.pipectl/cache/``.

    Parsing is most of validate's time; a statement's result depends only on its text, its
    dialect and the sqlglot version (part of the file name), so a repeated validate (a
    pre-commit hook, an editor) re-parses only what changed. A missing, unreadable or
    unwritable cache only costs speed: reads fall back to parsing, writes are skipped
    (read-only checkouts). ``PIPECTL_NO_CACHE=1`` disables it.
    """

    def __init__(self, path: Path | None):
        self.path = path
        self.entries: dict[str, list] = {}
        self.dirty = False
        if path is not None and path.is_file():
            try:
                loaded = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, ValueError) as exc:
                log.info("ignoring SQL parse cache %s: %s", path, exc)
            else:
                if isinstance(loaded, dict):
                    self.entries = loaded

    @staticmethod
    def key(dialect: str, sql: str, reads: bool, schema: dict | None = None) -> str:
        shape = json.dumps(schema, sort_keys=True) if schema is not None else ""
        return hashlib.sha1(f"{LINEAGE_VERSION}\0{dialect}\0{int(reads)}\0{shape}\0{sql}".encode()).hexdigest()

    def get(self, key: str) -> tuple | None:
        hit = self.entries.get(key)
        if hit is None or len(hit) != 4:
            return None
        error, named, reads, facts = hit
        return error, (tuple(named) if named is not None else None), tuple((int(i), str(c)) for i, c in reads), facts

    def put(self, key: str, result: tuple) -> None:
        error, named, reads, facts = result
        self.entries[key] = [error, list(named) if named is not None else None, [list(r) for r in reads], facts]
        self.dirty = True

    def save(self) -> None:
        if self.path is None or not self.dirty:
            return
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            ignore = self.path.parent.parent / ".gitignore"
            if not ignore.exists():
                ignore.write_text("*\n", encoding="utf-8")
            tmp = self.path.with_suffix(".tmp")
            tmp.write_text(json.dumps(self.entries), encoding="utf-8")
            tmp.replace(self.path)
        except OSError as exc:  # a read-only checkout: validation results are unaffected
            log.info("not writing SQL parse cache %s: %s", self.path, exc)


def parse_cache_for(project: Project) -> ParseCache:
    import sqlglot

    if os.environ.get("PIPECTL_NO_CACHE"):
        return ParseCache(None)
    return ParseCache(project.root / ".pipectl" / "cache" / f"sqlcheck-{sqlglot.__version__}.json")


def check_rendered_sql(project: Project, diags: Diagnostics, cache: ParseCache | None = None) -> None:
    """Render every processor's statements in every dialect and parse them with sqlglot."""
    cache = cache if cache is not None else parse_cache_for(project)
    checker = _Checker(project, diags, cache)
    for proc in project.processors.values():
        for dialect in DIALECTS:
            checker.processor(proc, dialect)
        if proc.transform.python and proc.enabled:
            diags.note("lineage", f"processor '{proc.name}': column lineage not analysed: Python transform "
                       f"({proc.transform.python}); its inputs are what it declares", proc.transform.location)
    cache.save()
