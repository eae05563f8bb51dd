"""Column lineage without sqlglot's ``qualify``: taken only when the query is already in the
form ``qualify`` gives it, and then the facts are exactly those of the general path."""
from __future__ import annotations

import json

import pytest
import sqlglot

from framework.manifest import load_project
from framework.manifest.diagnostics import Diagnostics
from framework.sql import lineage
from framework.sql.checker import Checker
from projects import REPO

SCHEMA = {"0": {"day": "DATE", "k": "STRING", "x": "INT64", "y": "FLOAT64"},
          "1": {"day": "DATE", "k": "STRING", "z": "INT64"}}

QUALIFIED = [
    "SELECT a.day, a.k, a.x * 2 AS x2 FROM __ref0.__t AS a WHERE a.day = @day AND a.k IN UNNEST(@ids)",
    "SELECT a.day, a.k, SUM(a.x + b.z) AS s FROM __ref0.__t a LEFT JOIN __ref1.__t b ON b.day = a.day AND b.k = a.k "
    "WHERE a.day = @day GROUP BY a.day, a.k",
    "WITH c AS (SELECT a.k, UPPER(TRIM(a.k)) AS kk, a.x FROM __ref0.__t AS a) SELECT c.kk AS k, MAX(c.x) AS m, COUNT(*) AS n "
    "FROM c AS c GROUP BY c.kk",
    "SELECT s.k, s.x FROM (SELECT a.k, a.x FROM __ref0.__t a UNION ALL SELECT b.k, b.z AS x FROM __ref1.__t b) AS s",
    "SELECT a.k, a.nope AS n, CURRENT_TIMESTAMP() AS at FROM __ref0.__t a JOIN __ref1.__t b ON a.x = b.k",
]
NOT_QUALIFIED = [
    "SELECT day, k FROM __ref0.__t AS a",                                  # unqualified columns
    "SELECT * FROM __ref0.__t AS a",                                       # star
    "SELECT a.k FROM __ref0.__t",                                          # table without alias
    "SELECT a.k, b.z FROM __ref0.__t a JOIN __ref1.__t b USING (k)",      # USING
    "SELECT a.k, SUM(a.x) AS s FROM __ref0.__t a GROUP BY 1",              # ordinal
    "SELECT a.k FROM __ref0.__t a ORDER BY a.k",                           # ORDER BY
    "SELECT A.k FROM __ref0.__t a",                                        # upper-case identifier
    "SELECT a.k, a.x + 1 FROM __ref0.__t a",                               # unnamed projection
    "SELECT s.k FROM (SELECT a.k FROM __ref0.__t a) AS s(k)",              # column aliases on a table
]


def _facts(sql: str, schema: dict, fast: bool) -> str:
    tree = [t for t in sqlglot.parse(sql, read="bigquery") if t is not None][-1]
    return json.dumps(lineage.analyze(tree, "bigquery", schema, frozenset({"k"}), fast=fast), sort_keys=True)


@pytest.mark.parametrize("sql", QUALIFIED)
def test_qualified_queries_take_the_fast_path_with_the_same_facts(sql, monkeypatch):
    taken = []
    original = lineage.already_qualified
    monkeypatch.setattr(lineage, "already_qualified", lambda tree: taken.append(original(tree)) or taken[-1])
    assert _facts(sql, SCHEMA, True) == _facts(sql, SCHEMA, False)
    assert taken == [True]


@pytest.mark.parametrize("sql", NOT_QUALIFIED)
def test_other_queries_take_the_general_path(sql):
    tree = sqlglot.parse_one(sql, read="bigquery")
    assert not lineage.already_qualified(tree)
    assert _facts(sql, SCHEMA, True) == _facts(sql, SCHEMA, False)


def test_outer_references_take_the_general_path():
    sql = "SELECT a.k, (SELECT MAX(b.z) FROM __ref1.__t b WHERE b.k = a.k) AS m FROM __ref0.__t a"
    assert _facts(sql, SCHEMA, True) == _facts(sql, SCHEMA, False)


@pytest.mark.parametrize("root", [REPO, REPO / "pipelines" / "iot_sensors"], ids=["nba_props", "iot_sensors"])
def test_every_example_transform_gives_the_same_facts_on_both_paths(root):
    project, _ = load_project(root)
    checker = Checker(project, Diagnostics())
    compared = 0
    for proc in project.processors.values():
        if not proc.transform.sql:
            continue
        for _proc, _dialect, sql, deployed, schema, _derived, _tables in checker.render_transform(proc) or []:
            if deployed:
                assert _facts(sql, schema, True) == _facts(sql, schema, False), proc.name
                compared += 1
    assert compared == sum(1 for p in project.processors.values() if p.transform.sql)
