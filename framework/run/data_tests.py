"""Run a processor's data tests (processors.yaml ``tests:``) against the warehouse.

Two callers: the runner, right after a processor wrote its partition (an ``error`` test
that fails turns the run into a failed one: its completion says so, the orchestrator
blocks the transition as for any failed critical processor, and the rows stay written
for inspection, as dbt build leaves a model whose tests failed); and ``pipectl test``, which
runs the tests of a selection on their own, like ``dbt test``. A test whose query itself
fails (a typo in an ``expression``) is an ``error`` result, never a silent pass.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Iterable, Sequence

from framework.errors import PipectlError
from framework.manifest.model import DataTest, Processor, Project
from framework.sql.data_tests import render_test

PASS, FAIL, WARN, ERROR = "pass", "fail", "warn", "error"


class DataTestError(PipectlError):
    """Blocking data tests failed after the processor wrote its partition."""


@dataclass
class TestResult:
    processor: str
    name: str
    kind: str
    severity: str
    status: str  # pass | fail (error severity) | warn (warn severity) | error (the query failed)
    failures: int
    seconds: float
    message: str = ""
    sql: str = ""
    location: str = ""

    @property
    def blocking(self) -> bool:
        """Fails the run (and ``pipectl test``): a failing ``error`` test, or a test that could not run."""
        return self.status == ERROR or (self.status == FAIL and self.severity == "error")

    def to_dict(self) -> dict[str, Any]:
        return {"processor": self.processor, "name": self.name, "kind": self.kind, "severity": self.severity,
                "status": self.status, "failures": self.failures, "seconds": round(self.seconds, 4),
                "message": self.message, "location": self.location}


def run_tests(warehouse: Any, project: Project, processor: Processor, partition: Any = None,
              tests: Sequence[DataTest] | None = None) -> list[TestResult]:
    """Every test of ``processor`` for ``partition`` (None: the whole table). Several tests
    run as one statement (one round trip, one plan: a statement costs about the same
    whatever it counts); one that fails to run is then retried alone, so its error is its own."""
    todo = list(tests if tests is not None else processor.tests)
    if len(todo) > 1:
        batched = _run_batched(warehouse, project, processor, partition, todo)
        if batched is not None:
            return batched
    return _run_each(warehouse, project, processor, partition, todo)


def _run_batched(warehouse: Any, project: Project, processor: Processor, partition: Any,
                 tests: Sequence[DataTest]) -> list[TestResult] | None:
    """All ``tests`` in one ``UNION ALL`` query; None when they cannot share one (two tests
    binding different values to one parameter name) or the query failed (run them one by one)."""
    started = time.perf_counter()
    batch = batched_query(project, processor, partition, tests, warehouse.dialect)
    if batch is None:
        return None
    sql, params, queries = batch
    try:
        rows = warehouse.query(sql, params, labels={"pipectl_test": f"{processor.name[:50].lower()}-all"})
    except PipectlError:
        return None
    failures = {int(r["test_index"]): int(r["failures"] or 0) for r in rows}
    return batched_results(processor, tests, queries, failures, time.perf_counter() - started)


def batched_query(project: Project, processor: Processor, partition: Any, tests: Sequence[DataTest],
                  dialect: str) -> tuple[str, list[Any], list[Any]] | None:
    """One query over every test (rows of ``test_index``, ``failures``), its parameters and
    each test's rendered query; None when two tests bind different values to one name. Also
    what BigQuery's run script runs inside the write (framework.run.script_write)."""
    try:
        queries = [render_test(project, processor, test, dialect, partition) for test in tests]
    except PipectlError:
        return None
    params: dict[str, Any] = {}
    for q in queries:
        for p in q.params:
            if p.name in params and params[p.name] != p:
                return None
            params[p.name] = p
    sql = "\nUNION ALL\n".join(f"SELECT {i} AS test_index, failures FROM (\n{q.sql.strip()}\n) AS test_{i}"
                                for i, q in enumerate(queries))
    return sql, list(params.values()), queries


def batched_results(processor: Processor, tests: Sequence[DataTest], queries: Sequence[Any],
                    failures: dict[int, int], seconds: float) -> list[TestResult]:
    """Each test's result from the failures the batched query counted per ``test_index``."""
    took = seconds / max(len(tests), 1)
    out = []
    for i, (test, q) in enumerate(zip(tests, queries)):
        n = failures.get(i, 0)
        status = PASS if n == 0 else (FAIL if test.severity == "error" else WARN)
        out.append(TestResult(processor.name, test.name, test.kind, test.severity, status, n, took, _message(test, n),
                              q.sql, str(test.location) if test.location.file else ""))
    return out


def _run_each(warehouse: Any, project: Project, processor: Processor, partition: Any,
              tests: Sequence[DataTest]) -> list[TestResult]:
    out = []
    for test in tests:
        started = time.perf_counter()
        where = str(test.location) if test.location.file else ""
        try:
            query = render_test(project, processor, test, warehouse.dialect, partition)
            rows = warehouse.query(query.sql, list(query.params), labels={"pipectl_test": test.name[:63].lower()})
        except PipectlError as exc:
            out.append(TestResult(processor.name, test.name, test.kind, test.severity, ERROR, 0,
                                  time.perf_counter() - started, f"the test could not run: {exc.render()}", "", where))
            continue
        failures = int(rows[0]["failures"]) if rows else 0
        status = PASS if failures == 0 else (FAIL if test.severity == "error" else WARN)
        out.append(TestResult(processor.name, test.name, test.kind, test.severity, status, failures,
                              time.perf_counter() - started, _message(test, failures), query.sql, where))
    return out


def _message(test: DataTest, failures: int) -> str:
    if failures == 0:
        return "ok"
    what = {"not_null": f"NULL in {', '.join(test.columns)}",
            "unique": f"duplicated values of ({', '.join(test.columns)})",
            "accepted_values": f"{test.columns[0] if test.columns else '?'} not in {list(test.values)}",
            "relationships": f"{test.columns[0] if test.columns else '?'} not found in {test.to}."
                             f"{test.to_column or (test.columns[0] if test.columns else '?')}",
            "expression": f"rows where NOT ({test.sql})",
            "sql": "rows returned by the test query"}.get(test.kind, test.kind)
    unit = "group" if test.kind == "unique" else "row"
    return f"{failures} {unit}{'s' if failures != 1 else ''}: {what}"


def failure_text(results: Iterable[TestResult]) -> str:
    """The error of a run whose blocking tests failed: each test, its count, and where it is declared."""
    parts = [f"data test {r.name} failed ({r.message})" + (f" at {r.location}" if r.location else "")
             for r in results if r.blocking]
    return "; ".join(parts) + (" (hint: `pipectl test --select NAME --date D` reruns them; fix the data or the "
                               "test, or set severity: warn)" if parts else "")


__all__ = ["DataTestError", "ERROR", "FAIL", "PASS", "WARN", "TestResult", "batched_query", "batched_results",
           "failure_text", "run_tests"]
