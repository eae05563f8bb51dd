"""``pipectl verify``: prove that incremental runs left every table as a full recompute would.

The promise of pipectl (docs/runtime.md#verify) is incremental == full. This module checks it
on real data: it recomputes the selected processors for one partition from scratch into a
scratch dataset of the same warehouse (same SQL, full batch, no change detection, no bus),
then compares each output table's partition with its recompute: order-insensitive,
grouped by the entity key, floats within a tolerance, run-metadata columns
(``CURRENT_TIMESTAMP`` and friends, found by lineage) left out.

Upstream reads of a recomputed processor see the recompute for the partition and the real
table for every other partition (rolling history stays as it is), through a subquery that
``ref()`` returns; the partition is always a query parameter. Scratch tables are dropped
whatever happens (errors, Ctrl-C, SIGTERM), unless ``keep_scratch``.
"""
from __future__ import annotations

import contextlib
import math
import signal
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Iterator, Sequence

from framework.errors import ConfigError, PipectlError
from framework.manifest.model import Processor, Project, Table
from framework.backends.protocols import QueryParam
from framework.run.table_diff import RowDiff, diff_rows
from framework.run.transform import bind_params
from framework.sql.params import coerce_partition, partition_param
from framework.sql.dialects import get_dialect

SCRATCH_PREFIX = "pipectl_verify_"
KEYS_PARAM = "verify_keys"
MAX_DETAIL_KEYS = 1000  # rows read per table at most for this many differing keys
NULL_KEY = "__pipectl_null_key__"


@dataclass
class TableResult:
    """One processor's verdict: ``equal``, ``differs``, ``skipped`` (why) or ``error``."""

    processor: str
    table: str | None
    status: str
    reason: str | None = None
    ignored: list[str] = field(default_factory=list)
    diff: RowDiff | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"processor": self.processor, "table": self.table, "status": self.status, "reason": self.reason,
                               "ignored_columns": self.ignored}
        if self.diff is not None:
            d = self.diff
            out.update(incremental_rows=d.incremental_rows, full_rows=d.full_rows, keys=d.keys, keys_differing=d.keys_differing,
                       changed=d.changed, only_incremental=d.only_incremental, only_full=d.only_full,
                       samples=[s.to_dict() for s in d.samples])
        return out


@dataclass
class VerifyReport:
    partition: str
    scratch: str
    tables: list[TableResult] = field(default_factory=list)
    seconds: float = 0.0
    kept: bool = False

    @property
    def ok(self) -> bool:
        return all(t.status in ("equal", "skipped") for t in self.tables)

    @property
    def differing(self) -> list[TableResult]:
        return [t for t in self.tables if t.status in ("differs", "error")]

    def to_dict(self) -> dict[str, Any]:
        return {"partition": self.partition, "ok": self.ok, "scratch": self.scratch, "scratch_kept": self.kept,
                "seconds": round(self.seconds, 3), "tables": [t.to_dict() for t in self.tables],
                "compared": sum(1 for t in self.tables if t.status in ("equal", "differs")),
                "differing": [t.processor for t in self.differing]}


def verify(project: Project, warehouse: Any, partition: Any, select: Sequence[str] | None = None, tolerance: float = 1e-9,
           ignore: Sequence[str] = (), sample: int = 3, keep_scratch: bool = False) -> VerifyReport:
    """Recompute ``select`` (default: every enabled processor) for ``partition`` and compare."""
    from framework.graph.graph import PipelineGraph

    if tolerance < 0:
        raise ConfigError(f"verify: tolerance must be >= 0, got {tolerance}")
    names = PipelineGraph(project).select(select) if select else PipelineGraph(project).topological_order()
    value = coerce_partition(project, partition)
    report = VerifyReport(str(partition), SCRATCH_PREFIX + uuid.uuid4().hex[:10], kept=keep_scratch)
    t0 = time.perf_counter()
    run = _Recompute(project, warehouse, value, report.scratch)
    try:
        with _sigterm_as_interrupt():
            for name in names:
                proc = project.processors[name]
                if not proc.enabled and not select:
                    continue
                result = run.processor(proc)
                if result.status != "skipped":
                    result = run.compare(proc, result, tolerance, ignore, sample)
                report.tables.append(result)
    finally:
        if not keep_scratch:
            run.cleanup()
        report.seconds = time.perf_counter() - t0
    return report


class _Recompute:
    def __init__(self, project: Project, warehouse: Any, partition: Any, scratch: str):
        self.p = project
        self.wh = warehouse
        self.partition = partition
        self.scratch = scratch
        self.dialect = get_dialect(warehouse.dialect)
        self.done: dict[str, str] = {}  # processor -> scratch fqn, recomputed
        self.failed: set[str] = set()
        self.created: list[str] = []
        self.volatile: dict[str, list[str]] = {}

    def scratch_table(self, out: Table) -> Table:
        return Table(self.scratch, f"{out.dataset}__{out.name}", out.columns)

    def _params(self, sql: str) -> list:
        return bind_params(sql, [partition_param(self.p, self.partition)], self.wh.dialect)

    def ref_sql(self, up: Processor) -> str:
        """What ``ref()`` renders for a recomputed upstream: its recompute for the partition,
        the real table for every other partition."""
        out = up.output
        assert out is not None
        cols = ", ".join(self.dialect.ident(c) for c in out.column_names)
        scratch = self.done[up.name]
        pc = self.p.partition_column
        if out.column(pc) is None:
            return f"(SELECT {cols} FROM {scratch})"
        return (f"(SELECT {cols} FROM {out.fqn} WHERE {self.dialect.ident(pc)} <> {self.dialect.param(pc)} "
                f"UNION ALL SELECT {cols} FROM {scratch})")

    def processor(self, proc: Processor) -> TableResult:
        import jinja2

        from framework.sql.render import transform_globals, render_transform

        out = proc.output
        if out is None:
            return TableResult(proc.name, None, "skipped", "no output table")
        if not proc.enabled:
            return TableResult(proc.name, out.fqn, "skipped", "disabled")
        if not proc.transform.sql:
            return TableResult(proc.name, out.fqn, "skipped", f"Python transform ({proc.transform.python}): not recomputed")
        broken = [i.name for i in proc.inputs if i.name in self.failed]
        if broken:
            self.failed.add(proc.name)
            return TableResult(proc.name, out.fqn, "error", f"not recomputed: upstream {', '.join(broken)} failed")
        globals_ = transform_globals(self.p, proc, self.wh.dialect, True)
        base_ref = globals_["ref"]

        def ref(name: str) -> str:
            up = self.p.processors.get(name)
            return self.ref_sql(up) if up is not None and up.name in self.done else base_ref(name)

        globals_["ref"] = ref
        target = self.scratch_table(out)
        try:
            sql = render_transform(self.p, proc, self.wh.dialect, True, globals_)
            self.volatile[proc.name] = volatile_columns(sql, self.wh.dialect)
            if not self.created:
                self.wh.create_dataset(self.scratch)
            self.created.append(target.fqn)
            self.wh.create_table(target)
            cols = ", ".join(self.dialect.ident(c) for c in out.column_names)
            insert = f"INSERT INTO {target.fqn} ({cols})\nSELECT {cols}\nFROM (\n{sql}\n) AS transformed"
            self.wh.execute_script(insert, self._params(insert))
        except (PipectlError, ValueError, jinja2.TemplateError) as exc:
            self.failed.add(proc.name)
            return TableResult(proc.name, out.fqn, "error", f"recompute failed: {getattr(exc, 'message', None) or exc}")
        self.done[proc.name] = target.fqn
        return TableResult(proc.name, out.fqn, "recomputed")

    def compare(self, proc: Processor, result: TableResult, tolerance: float, ignore: Sequence[str], sample: int) -> TableResult:
        """Per-key fingerprints are compared in the warehouse; only the rows of keys whose
        fingerprints differ are read (all rows for a table without an entity key)."""
        if result.status != "recomputed":
            return result
        out = proc.output
        assert out is not None
        skip = set(ignore) | set(self.volatile.get(proc.name, ()))
        ignored = sorted(skip & set(out.column_names))
        key = self.p.entity_key(proc)
        keys = [key] if key and out.column(key) is not None and key not in skip else []
        columns = [c for c in out.column_names if c not in skip]
        real, full = self.sides(proc)
        try:
            if keys:
                rows_inc, rows_full, n_keys, differing = self.differing_keys(out, columns, keys[0], real, full, tolerance)
                if not differing:
                    return TableResult(proc.name, out.fqn, "equal", None, ignored, RowDiff(rows_inc, rows_full, n_keys))
                chosen = differing[:MAX_DETAIL_KEYS]
                where = self.key_filter(keys[0], chosen)
                params = [QueryParam(KEYS_PARAM, [k for k in chosen if k is not None], "STRING", array=True)]
            else:
                where, params = "", []
            cols = ", ".join(self.dialect.ident(c) for c in columns)
            incremental = self.read(f"SELECT {cols} FROM {real}{where}", params)
            recomputed = self.read(f"SELECT {cols} FROM {full}{where}", params)
        except PipectlError as exc:
            return TableResult(proc.name, out.fqn, "error", f"cannot compare the table: {exc.message}", ignored)
        diff = diff_rows(incremental, recomputed, columns, keys, tolerance, sample)
        if keys:  # counts of the whole table; details of the keys read
            diff.incremental_rows, diff.full_rows, diff.keys = rows_inc, rows_full, n_keys
            if len(differing) > len(chosen):
                diff.keys_differing = len(differing)
        status = "equal" if diff.keys_differing == 0 and diff.incremental_rows == diff.full_rows else "differs"
        reason = f"details of the first {len(chosen)} of {len(differing)} differing keys" if keys and len(differing) > len(chosen) else None
        return TableResult(proc.name, out.fqn, status, reason, ignored, diff)

    def sides(self, proc: Processor) -> tuple[str, str]:
        """The incremental side (the real table's partition) and the recompute, as subqueries."""
        out = proc.output
        assert out is not None
        pc = self.p.partition_column
        cols = ", ".join(self.dialect.ident(c) for c in out.column_names)
        where = f" WHERE {self.dialect.ident(pc)} = {self.dialect.param(pc)}" if out.column(pc) is not None else ""
        return f"(SELECT {cols} FROM {out.fqn}{where}) AS side", f"(SELECT {cols} FROM {self.done[proc.name]}) AS side"

    def read(self, sql: str, extra: Sequence[QueryParam] = ()) -> list[dict[str, Any]]:
        return self.wh.query(sql, [*self._params(sql), *[p for p in extra if self.dialect.param(p.name) in sql]])

    def differing_keys(self, out: Table, columns: list[str], key: str, real: str, full: str,
                       tolerance: float) -> tuple[int, int, int, list[str | None]]:
        """(rows incremental, rows recomputed, keys, keys whose row fingerprints differ), floats
        rounded to the tolerance's digits. One small row per key crosses the wire, not the table."""
        from framework.sql.environment import dialect_macros

        digits = max(0, int(-math.floor(math.log10(tolerance)))) if tolerance > 0 else 12
        exprs = []
        for c in columns:
            col = out.column(c)
            ident = self.dialect.ident(c)
            exprs.append(f"ROUND({ident}, {digits})" if col is not None and col.type in ("FLOAT64", "NUMERIC") else ident)
        fingerprint = str(dialect_macros(self.p.root, self.wh.dialect).entity_fingerprint(exprs))
        k = f"COALESCE(CAST({self.dialect.ident(key)} AS STRING), '{NULL_KEY}')"
        per_key = "SELECT {k} AS k, COUNT(*) AS n, {fp} AS fp FROM {side} GROUP BY 1"
        sql = (f"WITH a AS ({per_key.format(k=k, fp=fingerprint, side=real)}),\n"
               f"b AS ({per_key.format(k=k, fp=fingerprint, side=full)})\n"
               "SELECT COALESCE(a.k, b.k) AS k, a.n AS n_a, b.n AS n_b, a.fp = b.fp AS same\n"
               "FROM a FULL OUTER JOIN b ON a.k = b.k")
        rows = self.read(sql)
        differing = sorted((None if r["k"] == NULL_KEY else r["k"] for r in rows if not r["same"]), key=lambda v: (v is None, v or ""))
        return (sum(int(r["n_a"] or 0) for r in rows), sum(int(r["n_b"] or 0) for r in rows), len(rows), differing)

    def key_filter(self, key: str, chosen: list[str | None]) -> str:
        k = f"CAST({self.dialect.ident(key)} AS STRING)"
        cond = self.dialect.in_array(k, KEYS_PARAM)
        return f" WHERE ({cond}{f' OR {k} IS NULL' if None in chosen else ''})"

    def cleanup(self) -> None:
        """Drop the scratch dataset (and so every scratch table), however verify ended."""
        if not self.created:
            return
        with _sigterm_as_interrupt(ignore=True):
            drop = getattr(self.wh, "drop_dataset", None)
            if drop is not None:
                drop(self.scratch)
                return
            for fqn in reversed(self.created):
                self.wh.execute_script(f"DROP TABLE IF EXISTS {fqn}")


def volatile_columns(sql: str, dialect: str) -> list[str]:
    """Output columns computed from the clock or randomness (``processed_at``): they differ
    between any two runs, so they are not compared."""
    from framework.sql.lineage import volatile_outputs

    return volatile_outputs(sql, get_dialect(dialect).sqlglot)


@contextlib.contextmanager
def _sigterm_as_interrupt(ignore: bool = False) -> Iterator[None]:
    """SIGTERM (a scheduler stopping the job) raises KeyboardInterrupt, so ``finally`` drops the
    scratch tables; with ``ignore`` it is held off while they are being dropped."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    previous = signal.signal(signal.SIGTERM, signal.SIG_IGN if ignore else interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
