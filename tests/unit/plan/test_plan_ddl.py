"""The DDL fallbacks of framework.plan.ddl quote every name with the dialect's escaping."""
from __future__ import annotations

from framework.plan.ddl import quote


def test_quote_escapes_instead_of_dropping_quote_characters():
    # a backtick used to be stripped, silently naming a different table
    assert quote("bigquery", "ds", "a`b") == "`ds.a\\`b`"
    assert quote("bigquery", "ds", "games") == "`ds.games`"
    assert quote("duckdb", "ds", 'a"b') == '"ds"."a""b"'
