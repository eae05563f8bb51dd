"""The SQL parse cache: a repeated validate re-parses nothing, and gives the same results."""
from __future__ import annotations

from framework.manifest import load_project
from framework.manifest.diagnostics import Diagnostics
from framework.sql import checker, checks
from projects import PROCESSORS, SQL, write_project


def _check(root, monkeypatch, calls):
    project, _ = load_project(root)
    diags = Diagnostics()
    original = checker.Checker._parse_uncached

    def counting(self, sql, dialect, *args):
        calls.append(dialect)
        return original(self, sql, dialect, *args)

    monkeypatch.setattr(checker.Checker, "_parse_uncached", counting)
    checks.check_rendered_sql(project, diags)
    return [str(d) for d in diags.items]


def _broken(tmp_path):
    sql = dict(SQL)
    sql["sql/store_totals.sql"] = "SELECT day, store_id, SUM(amount) AS total FROM {{ ref('orders_raw') }} o\nWHERE (o.day = {{ partition }}\n"
    return write_project(tmp_path, PROCESSORS, sql=sql)


def test_second_run_parses_nothing_and_reports_the_same(tmp_path, monkeypatch):
    monkeypatch.delenv("PIPECTL_NO_CACHE", raising=False)
    root = _broken(tmp_path)
    first_calls, second_calls = [], []
    first = _check(root, monkeypatch, first_calls)
    second = _check(root, monkeypatch, second_calls)
    assert first_calls and second_calls == []
    assert first == second and any("is not valid" in d for d in first)
    assert (root / ".pipectl" / ".gitignore").read_text() == "*\n"


def test_a_corrupt_cache_is_rebuilt(tmp_path, monkeypatch):
    monkeypatch.delenv("PIPECTL_NO_CACHE", raising=False)
    root = _broken(tmp_path)
    expected = _check(root, monkeypatch, [])
    caches = list((root / ".pipectl" / "cache").glob("sqlcheck-*.bin"))
    assert caches
    for f in caches:
        f.write_bytes(b"{not a cache")
    calls = []
    assert _check(root, monkeypatch, calls) == expected and calls


def test_cache_can_be_disabled(tmp_path, monkeypatch):
    monkeypatch.setenv("PIPECTL_NO_CACHE", "1")
    root = write_project(tmp_path)
    _check(root, monkeypatch, [])
    assert not (root / ".pipectl").exists()
