"""Lineage contracts: compare what a transform's SQL does with what the manifest says.

Each rule is a class of incremental != full mismatch (docs/validate.md#column-lineage):

- ``transform-columns``: the SELECT returns exactly ``output.columns`` (missing, extra,
  misspelt with did-you-mean);
- ``unknown-column``: every column read exists in its input's declared columns;
- ``undeclared-read``: every table read is a declared input (else detection never sees it);
- ``column-type``: join/compare keys agree in type, and a column passed through unchanged
  keeps its upstream type;
- ``mapped-key``: rows of an input declared with an entity mapping reach the output's
  entity through the mapping's ``via`` table, never through the rows' own copy of the key;
- ``key-normalisation``: an output key written as an expression of the input key
  (``UPPER(TRIM(team_abbr))``) is declared on the input (``key:``), so detection renders it;
  ``input-key``: that declaration parses and reads the input's own columns.

Facts come from :func:`framework.sql.lineage.analyze`; this module only reads the model.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Callable

from framework.errors import ConfigError, Location
from framework.manifest.diagnostics import did_you_mean
from framework.manifest.model import Input, Processor, Project, Table

Report = Callable[[str, str, Location, "str | None"], None]


@dataclass
class _Read:
    """One table the transform reads (placeholder label -> the manifest's view of it)."""

    label: str
    fqn: str
    name: str
    table: Table | None
    inp: Input | None


def canonical_key(expression: str) -> str | None:
    """A declared key expression in the spelling lineage facts use (None if it does not parse)."""
    import sqlglot
    from sqlglot.errors import SqlglotError

    try:
        tree = sqlglot.parse_one(expression, read="bigquery")
    except SqlglotError:
        return None
    for col in tree.find_all(sqlglot.exp.Column):
        col.set("table", None)
    return tree.sql(dialect="bigquery")


class LineageRules:
    def __init__(self, project: Project, proc: Processor, facts: dict[str, Any], tables: list[str], report: Report):
        self.p = project
        self.proc = proc
        self.facts = facts
        self.report = report
        self.text: str | None = None
        self.reads = {str(i): self._read(str(i), fqn) for i, fqn in enumerate(tables)}

    def _read(self, label: str, fqn: str) -> _Read:
        p = self.p
        up = p.resolve_processor(fqn)
        if up is not None and up.output is not None and up.output.fqn == fqn:
            name, table = up.name, up.output
        else:
            src = next((s for s in p.sources.values() if s.table.fqn == fqn), None)
            name, table = (src.name, src.table) if src is not None else (fqn, None)
        inp = next((i for i in self.proc.inputs if i.name == name), None)
        return _Read(label, fqn, name, table, inp)

    # ---------------------------------------------------------------- locating
    def locate(self, *needles: str) -> Location:
        """file:line:col of the first line of the transform naming one of ``needles``."""
        rel = self.proc.transform.sql or ""
        if self.text is None:
            try:
                self.text = (self.p.root / rel).read_text(encoding="utf-8")
            except OSError:
                self.text = ""
        for needle in needles:
            if not needle:
                continue
            pattern = re.compile(r"(?<!\w)" + re.escape(needle).replace(r"\ ", r"\s+") + r"(?!\w)", re.IGNORECASE)
            for number, line in enumerate(self.text.splitlines(), start=1):
                m = pattern.search(line)
                comment = line.find("--")
                if m and (comment < 0 or m.start() < comment):
                    return Location(rel, number, m.start() + 1)
        return self.proc.transform.location

    def ref_name(self, ref: list) -> str:
        read = self.reads.get(ref[0])
        return f"{read.name if read else ref[0]}.{ref[1]}"

    def type_of(self, ref: list | None) -> str | None:
        if not ref:
            return None
        read = self.reads.get(ref[0])
        col = read.table.column(ref[1]) if read and read.table else None
        return col.type if col else None

    def error(self, code: str, message: str, location: Location, hint: str | None) -> None:
        self.report(code, f"processor '{self.proc.name}': {message}", location, hint)

    # ---------------------------------------------------------------- rules
    def run(self) -> None:
        self.undeclared_reads()
        self.unknown_columns()
        self.output_types()
        self.join_types()
        self.mapped_keys()
        self.declared_keys()
        self.key_normalisation()

    def undeclared_reads(self) -> None:
        out = self.proc.output.fqn if self.proc.output else None
        for read in self.reads.values():
            if read.inp is None and read.fqn != out and read.table is not None:
                self.error("undeclared-read", f"transform {self.proc.transform.sql} reads {read.name} ({read.fqn}), which is not a declared input: "
                           "change detection never looks at it, so an edit there is never processed incrementally",
                           self.locate(read.name), f"add '{read.name}' to the inputs of '{self.proc.name}'")

    def unknown_columns(self) -> None:
        seen: set[tuple] = set()
        for label, alias, column, candidates in self.facts.get("unknown", []):
            if (alias, column) in seen:
                continue
            seen.add((alias, column))
            where = f"{alias}.{column}" if alias else column
            read = self.reads.get(label) if label is not None else None
            owner = f"input '{read.name}' ({read.fqn}) declares" if read else (f"'{alias}' returns" if alias else "no table in scope has")
            hint = did_you_mean(column, candidates) or (f"its columns: {', '.join(candidates[:12])}" if candidates else "check the spelling")
            self.error("unknown-column", f"transform reads {where}, but {owner} no column '{column}'", self.locate(where, column), hint)

    def output_types(self) -> None:
        out = self.proc.output
        if out is None:
            return
        for name, fact in self.facts.get("columns", {}).items():
            declared = out.column(name)
            upstream = self.type_of(fact.get("direct"))
            if declared is None or upstream is None or upstream == declared.type:
                continue
            src = self.ref_name(fact["direct"])
            self.error("column-type", f"output column '{name}' is declared {declared.type} but the transform passes {src} ({upstream}) through unchanged",
                       declared.location if declared.location.file != "<unknown>" else self.locate(name),
                       f"declare '{name}' as {upstream} (or change {src}), or CAST it in the SELECT")

    def join_types(self) -> None:
        seen: set[tuple] = set()
        for eq in self.facts.get("equalities", []):
            a, b = eq["left"].get("direct"), eq["right"].get("direct")
            ta, tb = self.type_of(a), self.type_of(b)
            if ta is None or tb is None or ta == tb:
                continue
            key = tuple(sorted((self.ref_name(a), self.ref_name(b))))
            if key in seen:
                continue
            seen.add(key)
            self.error("column-type", f"transform compares {self.ref_name(a)} ({ta}) with {self.ref_name(b)} ({tb}) in `{eq['sql']}`: "
                       "values of different types never match (BigQuery rejects the query)",
                       self.locate(eq["sql"], *_sides(eq["sql"])), f"declare both columns with one type (fix the producer's output.columns), or CAST one side")

    def mapped_keys(self) -> None:
        """Rows of an input declared with a mapping reach the output's entity through the
        mapping's ``via`` table: never grouped, filtered or joined by their own copy of the
        target key, and their own key joined only to the ``via`` table."""
        from framework.sql.context import find_mapping, input_spec

        p, proc = self.p, self.proc
        if proc.entity is None or proc.entity not in p.entity_kinds:
            return
        target = p.entity_kinds[proc.entity]
        for read in self.reads.values():
            if read.inp is None or read.table is None:
                continue
            try:
                spec = input_spec(p, proc, read.inp)
                if spec.scope != "mapped":
                    continue
                kind = p.sources[read.name].entity if read.inp.kind == "source" else p.processors[read.name].entity
                mapping = find_mapping(p, read.inp, kind or "", target.name)
            except ConfigError:
                continue  # reported by the input rules
            if mapping is None or mapping.via == read.name:
                continue  # the input is its own mapping table: its columns are the mapping
            hint = (f"join {mapping.via} ON its {spec.mapping_from} = {read.name}.{spec.key} (at the partition) and use "
                    f"{mapping.via}.{spec.mapping_to} as the {target.name} key; or drop 'mapping: {mapping.name}' from the input "
                    "if the rows' own column is the truth")
            why = (f"input '{read.name}' is declared mapped to {target.name} through '{mapping.name}' (via {mapping.via}), so change "
                   f"detection attributes its rows to the {target.name} the mapping names")
            own_target = {target.key, spec.mapping_to or ""} & set(read.table.column_names) - {spec.key or "", ""}
            found = self._own_key_use(read.label, own_target, target.key)
            if found is not None:
                verb, col, needles = found
                self.error("mapped-key", f"{why}, but the transform {verb} {read.name}'s own {col}: a row whose {col} differs from the "
                           f"mapping is never marked changed for that {target.name}", self.locate(*needles, col), hint)
                continue
            via = {r.label for r in self.reads.values() if r.name == mapping.via}
            joined = self._join_bypassing(read.label, spec.key or "", via)
            if joined is not None:
                eq, cols = joined
                self.error("mapped-key", f"{why}, but the transform joins {read.name}.{spec.key} to {cols} in `{eq['sql']}`, "
                           f"not to {mapping.via}: a row whose {cols} differs from the mapping gets a stale result",
                           self.locate(eq["sql"], *_sides(eq["sql"])), hint)

    def _own_key_use(self, label: str, own_target: set[str], key: str) -> tuple[str, str, list[str]] | None:
        """(what the SQL does, the input's own column, where to point) when a GROUP BY, an
        entity filter, a join or the output key uses the input's own copy of the target key."""
        def own(refs: list) -> str | None:
            return next((r[1] for r in refs if r[0] == label and r[1] in own_target), None)

        for g in self.facts.get("groups", []):
            if own(g["bases"]):
                return "groups rows by", own(g["bases"]) or "", [f"GROUP BY {g['sql']}", g["sql"]]
        for f in self.facts.get("filters", []):
            if own(f["bases"]):
                return "selects rows (entity_filter) by", own(f["bases"]) or "", [f"entity_filter('{f['sql']}')", f["sql"]]
        for eq in self.facts.get("equalities", []):
            col = own(eq["left"]["bases"]) or own(eq["right"]["bases"])
            if col:
                return "joins rows on", col, [eq["sql"], *_sides(eq["sql"])]
        col = own((self.facts.get("columns", {}).get(key) or {}).get("bases", []))
        return (f"takes its {key} from", col, [key]) if col else None

    def _join_bypassing(self, label: str, src_key: str, via: set[str]) -> tuple[dict, str] | None:
        """The first join of the input's own key to columns of neither the input nor ``via``."""
        for eq in self.facts.get("equalities", []):
            for mine, other in ((eq["left"], eq["right"]), (eq["right"], eq["left"])):
                bases = other["bases"]
                if mine.get("direct") == [label, src_key] and bases and not any(r[0] in via or r[0] == label for r in bases):
                    return eq, ", ".join(self.ref_name(r) for r in bases)
        return None

    def declared_keys(self) -> None:
        """An input's ``key:`` expression parses and reads only the input's own columns."""
        import sqlglot
        from sqlglot.errors import SqlglotError

        from framework.sql.context import input_table

        for inp in self.proc.inputs:
            if not inp.key:
                continue
            try:
                table, _ = input_table(self.p, inp)
                tree = sqlglot.parse_one(inp.key, read="bigquery")
            except ConfigError:
                continue  # reported by the input rules
            except SqlglotError as exc:
                self.error("input-key", f"input '{inp.name}': key {inp.key!r} is not a SQL expression: {str(exc).splitlines()[0]}",
                           inp.location, "write it over the input's columns, e.g. UPPER(TRIM(team_abbr))")
                continue
            for col in tree.find_all(sqlglot.exp.Column):
                if table.column(col.name) is None:
                    self.error("input-key", f"input '{inp.name}': key {inp.key!r} reads '{col.name}', which {table.fqn} does not declare",
                               inp.location, did_you_mean(col.name, table.column_names) or "use the input's own columns")

    def key_normalisation(self) -> None:
        from framework.sql.context import input_spec

        p, proc = self.p, self.proc
        key = p.entity_key(proc)
        fact = self.facts.get("columns", {}).get(key or "")
        if not key or not fact:
            return
        form = fact.get("form")
        for read in self.reads.values():
            if read.inp is None or read.table is None:
                continue
            try:
                spec = input_spec(p, proc, read.inp)
            except ConfigError:
                continue
            if spec.scope != "entity":
                continue
            declared = canonical_key(read.inp.key) if read.inp.key else None
            if form and form[0] == [read.label, spec.key]:
                written = form[1]
                if written != spec.key and declared is None:
                    self.error("key-normalisation", f"transform writes its entity key {key} as {written} of input '{read.name}', but change "
                               f"detection keys that input on the raw {spec.key}: a row whose {spec.key} differs only in spelling is "
                               "detected as another entity, and the merge writes a second row",
                               self.locate(written.split("(")[0] if "(" in written else key, key),
                               f"declare the normalisation on the input ({{{read.inp.kind}: {read.name}, key: \"{written}\"}}) so detection "
                               "applies it too, or write the key unchanged")
                elif declared is not None and written != declared:
                    self.error("key-normalisation", f"input '{read.name}' declares key {read.inp.key} but the transform writes {key} as {written}",
                               self.locate(key), f"make the input's key: and the SELECT agree")
            if declared is None:
                continue
            for f in self.facts.get("filters", []):
                ff = f.get("form")
                if ff and ff[0] == [read.label, spec.key] and ff[1] != declared:
                    self.error("key-normalisation", f"input '{read.name}' declares key {read.inp.key}, but the transform filters it with "
                               f"entity_filter({ff[1]}): the selected ids are normalised, the raw column is not",
                               self.locate("entity_filter"), f"write entity_filter('{read.inp.key}') with the table alias")


def check_output_columns(rules: LineageRules, named: tuple[str, ...] | None) -> None:
    """The SELECT's column names against ``output.columns``: missing, extra and misspelt."""
    out = rules.proc.output
    if named is None or out is None:
        return
    declared = list(out.column_names)
    missing = [c for c in declared if c not in named]
    extra = [c for c in named if c not in declared]
    rel = rules.proc.transform.sql
    for col in extra:
        near = did_you_mean(col, missing)
        if near:
            meant = near.split("'")[1]
            missing.remove(meant)
            rules.error("transform-columns", f"transform {rel} returns '{col}' where output.columns declares '{meant}'",
                        rules.locate(col), f"{near} rename the SELECT's alias (AS {meant}) or the declared column")
        else:
            rules.error("transform-columns", f"transform {rel} returns column '{col}', which output.columns does not declare",
                        rules.locate(col), f"declare it in output.columns of '{rules.proc.name}' or drop it from the SELECT")
    if missing:
        rules.error("transform-columns", f"transform {rel} does not return output column(s) {', '.join(missing)}",
                    rules.proc.transform.location, "the SELECT must return every output column by name (alias with AS)")


def _sides(sql: str) -> list[str]:
    return [s.strip() for s in sql.split("=")] if "=" in sql else [sql]


def check_lineage(project: Project, proc: Processor, facts: dict[str, Any], tables: list[str], report: Report) -> None:
    """Run every lineage rule for one processor's analysed transform."""
    LineageRules(project, proc, facts, tables, report).run()


__all__ = ["check_lineage", "check_output_columns", "canonical_key", "LineageRules"]
