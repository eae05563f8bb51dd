"""Golden SQL files: every template rendered for the fixture project, per dialect, compared
as text with tests/golden/<dialect>/<name>.sql.

A template change shows up as a readable diff here. To accept a deliberate change, run

    PIPECTL_UPDATE_GOLDEN=1 python -m pytest tests/unit/sql/test_golden.py

and review the diff of tests/golden/ before committing.
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from framework.project import load
from framework.sql.render import render_record, render_state_ddl, render_state_upgrade, render_statement

GOLDEN = Path(__file__).resolve().parents[2] / "golden"
PROJECT = GOLDEN / "project"
UPDATE = os.environ.get("PIPECTL_UPDATE_GOLDEN") == "1"
DIALECTS = ("duckdb", "bigquery")
PROCESSORS = ("player_boxscores", "rosters", "player_summary", "team_summary")


def _cases() -> list[tuple[str, str, str]]:
    cases = [(d, "_state_ddl", "") for d in DIALECTS] + [(d, "_state_upgrade", "") for d in DIALECTS]
    cases += [(d, "player_summary", "tests") for d in DIALECTS]
    for d in DIALECTS:
        for proc in PROCESSORS:
            for kind in ("detect", "detect_grouped", "filter", "ddl", "merge", "merge_full", "transform", "record", "record_selective",
                         "record_unknown"):
                cases.append((d, proc, kind))
    return cases


@pytest.fixture(scope="module")
def project():
    return load(PROJECT)


def _render(project, dialect: str, proc: str, kind: str) -> str:
    if proc == "_state_ddl":
        return render_state_ddl(project, dialect).sql
    if proc == "_state_upgrade":
        return render_state_upgrade(project, dialect).sql
    if kind == "tests":  # the data tests (processors.yaml tests:), one query each, with typed parameters
        from framework.sql.data_tests import render_test

        proc_ = project.processors[proc]
        out = []
        for test in proc_.tests:
            q = render_test(project, proc_, test, dialect, "2025-01-06")
            out.append(q.sql.rstrip() + ";\n-- parameters: " + ", ".join(f"{p.name} {p.type}{'[]' if p.array else ''}={p.value!r}"
                                                             for p in q.params) + "\n")
        return "".join(out)
    if kind == "merge_full":
        r = render_statement(project, proc, "merge", dialect, full_batch=True)
    elif kind == "detect_grouped":  # the plan that aggregates rows per entity (the default for all but one-input processors)
        r = render_statement(project, proc, "detect", dialect, grouped=True)
    elif kind.startswith("record"):
        r = render_record(project, proc, dialect, selective=kind != "record", unknown=kind == "record_unknown")
    else:
        r = render_statement(project, proc, kind, dialect)
    return r.sql + f"-- parameters: {', '.join(r.params)}\n"


@pytest.mark.parametrize("dialect,proc,kind", _cases(), ids=lambda x: x or "-")
def test_golden(project, dialect, proc, kind):
    text = _render(project, dialect, proc, kind)
    path = GOLDEN / dialect / (f"{proc}.{kind}.sql" if kind else f"{proc}.sql")
    if UPDATE or not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        if not UPDATE:
            pytest.fail(f"golden file {path} did not exist and was written: review and commit it")
    assert text == path.read_text(), f"{path} differs; if the change is deliberate, rerun with PIPECTL_UPDATE_GOLDEN=1 and review the diff"


@pytest.mark.parametrize("dialect", DIALECTS)
def test_golden_sql_parses_in_its_dialect(project, dialect):
    import sqlglot

    for path in sorted((GOLDEN / dialect).glob("*.sql")):
        assert sqlglot.parse(path.read_text(), read=dialect), path
