"""A parse worker skips BigQuery's implicit-UNNEST pass when no join lacks an ON, and gives
the trees, errors and check results sqlglot's normal parse gives (framework.sql.parsing._parse)."""
from __future__ import annotations

from contextlib import contextmanager

import pytest
import sqlglot

from framework.manifest import load_project
from framework.manifest.diagnostics import Diagnostics
from framework.sql import parsing
from framework.sql.checker import Checker
from projects import REPO

SCHEMA = {"0": {"day": "DATE", "k": "STRING", "x": "INT64", "arr": "ARRAY<INT64>"},
          "1": {"day": "DATE", "k": "STRING", "z": "INT64"}}

STATEMENTS = [
    # every join has an ON: parsed once, with the pass off
    "SELECT a.day, a.k, a.x * 2 AS x2 FROM __ref0.__t AS a WHERE a.day = @day AND a.k IN UNNEST(@ids)",
    "SELECT a.k, SUM(a.x + b.z) AS s FROM __ref0.__t a LEFT JOIN __ref1.__t b ON b.day = a.day AND b.k = a.k GROUP BY a.k",
    "WITH c AS (SELECT a.k, a.x FROM __ref0.__t a JOIN __ref1.__t b ON b.k = a.k) SELECT c.k, c.x FROM c",
    # implicit UNNEST: a comma join and a join without ON to a path through an earlier alias
    "SELECT a.k, e AS v FROM __ref0.__t AS a, a.arr AS e",
    "SELECT a.k, e FROM __ref0.__t a CROSS JOIN a.arr e",
    "SELECT a.k FROM __ref0.__t a JOIN __ref1.__t b USING (k)",
    "SELECT a.k, (SELECT COUNT(*) FROM a.arr) AS n FROM __ref0.__t a, __ref1.__t b",
    # errors: the message of the normal parse
    "SELECT a.k FROM __ref0.__t a WHERE ) a.day = 1",
    "SELECT a.k FROM __ref0.__t a JOIN",
    "SELECT 1; SELECT a.k, e FROM __ref0.__t a, a.arr e",
]


@pytest.fixture
def worker():
    """This process switched to a worker's parsing, restored afterwards."""
    before = set(parsing._NO_IMPLICIT_UNNEST)
    parsing.worker_init()
    try:
        yield
    finally:
        for cls in parsing._NO_IMPLICIT_UNNEST - before:
            cls.SUPPORTS_IMPLICIT_UNNEST = True
        parsing._NO_IMPLICIT_UNNEST.clear()
        parsing._NO_IMPLICIT_UNNEST.update(before)


def _normal(sql: str) -> str:
    try:
        return repr([t for t in sqlglot.parse(sql, read="bigquery") if t is not None])
    except sqlglot.errors.SqlglotError as exc:
        return f"error: {exc}"


def test_worker_switches_the_pass_off_for_bigquery_only(worker):
    bigquery = sqlglot.Dialect.get_or_raise("bigquery").parser_class
    assert bigquery in parsing._NO_IMPLICIT_UNNEST and bigquery.SUPPORTS_IMPLICIT_UNNEST is False
    assert "UNNEST" in parsing._parse(sqlglot, STATEMENTS[3], "bigquery")[0].sql("bigquery")  # still made explicit
    assert bigquery.SUPPORTS_IMPLICIT_UNNEST is False  # and switched off again


@contextmanager
def pass_on():
    """The implicit-UNNEST pass back on for a block: what a parse outside a worker does."""
    for cls in parsing._NO_IMPLICIT_UNNEST:
        cls.SUPPORTS_IMPLICIT_UNNEST = True
    try:
        yield
    finally:
        for cls in parsing._NO_IMPLICIT_UNNEST:
            cls.SUPPORTS_IMPLICIT_UNNEST = False


def _trees(sql: str) -> str:
    try:
        return repr([t for t in parsing._parse(sqlglot, sql, "bigquery") if t is not None])
    except sqlglot.errors.SqlglotError as exc:
        return f"error: {exc}"


@pytest.mark.parametrize("sql", STATEMENTS)
def test_worker_parse_gives_the_normal_trees_and_results(sql, worker):
    in_worker = _trees(sql), parsing.parse_statement(sql, "bigquery", True, SCHEMA, "duckdb", frozenset({"k"}))
    with pass_on():
        assert in_worker == (_normal(sql), parsing.parse_statement(sql, "bigquery", True, SCHEMA, "duckdb", frozenset({"k"})))


@pytest.mark.parametrize("root", [REPO, REPO / "pipelines" / "iot_sensors"], ids=["nba_props", "iot_sensors"])
def test_every_example_statement_checks_the_same_in_a_worker(root, worker):
    project, _ = load_project(root)
    checker = Checker(project, Diagnostics())
    jobs = [checker._work(sql, dialect, deployed, schema, derived)
            for proc in project.processors.values() if proc.transform.sql
            for _p, dialect, sql, deployed, schema, derived, _t in checker.render_transform(proc) or []]
    assert jobs
    in_worker = [parsing.parse_statement(*job) for job in jobs]
    with pass_on():
        assert in_worker == [parsing.parse_statement(*job) for job in jobs]
