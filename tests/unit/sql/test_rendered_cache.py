"""Statements of a project loaded through the project cache are rendered once and reused by
later commands (``.pipectl/cache/rendered.json``); the reused text is exactly what rendering
gives, any change of what it was rendered from renders again, and a damaged record is
ignored with a warning, never used."""
from __future__ import annotations

import logging

import pytest

from framework.manifest.prefix import with_prefixes
from framework.project import load
from framework.sql import environment, rendered
from framework.sql.data_tests import render_test
from framework.sql.render import render_record, render_state_ddl, render_statement
from projects import copy_example

DIALECTS = ("duckdb", "bigquery")


@pytest.fixture(autouse=True)
def caching(monkeypatch):
    monkeypatch.delenv("PIPECTL_NO_CACHE", raising=False)
    environment.reset_template_cache()
    yield
    environment.reset_template_cache()


def _new_process() -> None:
    """What the next command starts with: no environment, no memo in memory."""
    environment.reset_template_cache()


def _everything(project) -> dict:
    """Every statement a run renders, for every processor, in both dialects."""
    out = {}
    for dialect in DIALECTS:
        out[("state", dialect)] = render_state_ddl(project, dialect)
        for name, proc in project.processors.items():
            if proc.transform.sql and proc.output is not None:
                for full in (True, False):
                    out[(name, "merge", dialect, full)] = render_statement(project, proc, "merge", dialect, full)
                    out[(name, "transform", dialect, full)] = render_statement(project, proc, "transform", dialect, full)
            if proc.inputs:
                out[(name, "detect", dialect)] = render_statement(project, proc, "detect", dialect)
                for selective in (True, False):
                    out[(name, "record", dialect, selective)] = render_record(project, proc, dialect, selective)
            for test in proc.tests:
                out[(name, test.name, dialect)] = render_test(project, proc, test, dialect, "2025-01-06")
    return out


def _refuse_rendering(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("a template was rendered: the statement was not reused")

    monkeypatch.setattr(environment, "environment", refuse)
    monkeypatch.setattr(environment, "dialect_macros", refuse)


def test_reused_statements_are_exactly_what_rendering_gives(tmp_path, monkeypatch):
    root = copy_example(tmp_path / "example")
    first = _everything(load(root))
    assert (root / ".pipectl" / "cache" / rendered.FILE).is_file()
    _new_process()
    _refuse_rendering(monkeypatch)
    assert _everything(load(root)) == first
    monkeypatch.undo()
    monkeypatch.setenv("PIPECTL_NO_CACHE", "1")  # rendered from scratch, no cache anywhere
    _new_process()
    assert _everything(load(root)) == first


def test_an_edited_transform_renders_again_in_the_same_process(tmp_path):
    root = copy_example(tmp_path / "example")
    project = load(root)
    proc = project.processors["player_game_summary"]
    before = render_statement(project, proc, "merge", "duckdb", False).sql
    path = root / proc.transform.sql
    path.write_text(path.read_text().replace("SELECT", "SELECT /* edited */", 1))
    after = render_statement(project, proc, "merge", "duckdb", False).sql
    assert "/* edited */" in after and "/* edited */" not in before


@pytest.mark.parametrize("change", ["template override", "manifest", "pipectl's SQL code"])
def test_what_renders_again_in_the_next_command(tmp_path, monkeypatch, change):
    root = copy_example(tmp_path / "example")
    before = render_statement(load(root), "player_game_summary", "detect", "duckdb").sql
    if change == "template override":
        override = root / "templates" / "duckdb" / "_dialect.sql.j2"
        override.parent.mkdir(parents=True)
        override.write_text((environment.BUILTIN_TEMPLATES / "duckdb" / "_dialect.sql.j2").read_text()
                            .replace("%}hash(", "%}md5_number("))
        expected = "md5_number("
    elif change == "manifest":
        path = root / "processors.yaml"
        path.write_text(path.read_text().replace("dataset: nba_analytics", "dataset: nba_analytics_v2", 1))
        expected = "nba_analytics_v2"
    else:
        _new_process()
        monkeypatch.setattr(rendered, "_code_state", lambda: ["another pipectl"])
        expected = None
    _new_process()
    calls = []
    real = environment.environment
    monkeypatch.setattr(environment, "environment", lambda *a: calls.append(a) or real(*a))
    after = render_statement(load(root), "player_game_summary", "detect", "duckdb").sql
    assert calls, "the statement was reused although what it was rendered from changed"
    if expected is not None:
        assert expected in after and expected not in before
    else:
        assert after == before


@pytest.mark.parametrize("damage", ["truncated", "byte flipped", "not a record"])
def test_a_damaged_record_is_ignored_with_a_warning_and_rewritten(tmp_path, monkeypatch, caplog, damage):
    root = copy_example(tmp_path / "example")
    expected = render_statement(load(root), "player_game_summary", "detect", "duckdb")
    path = root / ".pipectl" / "cache" / rendered.FILE
    data = path.read_bytes()
    if damage == "truncated":
        path.write_bytes(data[: len(data) // 2])
    elif damage == "byte flipped":
        i = len(data) // 2
        path.write_bytes(data[:i] + bytes([data[i] ^ 0x20]) + data[i + 1:])
    else:
        path.write_bytes(b'{"header": "x", "entries": {}}')
    _new_process()
    with caplog.at_level(logging.WARNING, logger="framework.sql.rendered"):
        assert render_statement(load(root), "player_game_summary", "detect", "duckdb") == expected
    assert ["ignoring the damaged cache of rendered statements" in r.getMessage() for r in caplog.records] == [True]
    _new_process()
    _refuse_rendering(monkeypatch)  # rewritten whole: the next command reuses it
    assert render_statement(load(root), "player_game_summary", "detect", "duckdb") == expected


def test_a_project_made_in_memory_is_always_rendered(tmp_path, monkeypatch):
    """A target's prefixes (or a test fixture) make a model the record never saw."""
    root = copy_example(tmp_path / "example")
    prefixed = with_prefixes(load(root), "dev_", "dev-")
    assert rendered.memo_for(prefixed) is None
    sql = render_statement(prefixed, "player_game_summary", "detect", "duckdb").sql
    assert "dev_nba_analytics" in sql
    monkeypatch.setenv("PIPECTL_NO_CACHE", "1")
    assert rendered.memo_for(load(root)) is None


def test_a_call_holding_a_function_is_not_keyed():
    with pytest.raises(rendered.NotKeyable):
        rendered.call_key("template", "merge.sql.j2", "duckdb", {"entity_filter": lambda column: "TRUE"})
    assert rendered.call_key("template", "x", "duckdb", {"a": [1, True]}) != rendered.call_key("template", "x", "duckdb", {"a": [True, 1]})
