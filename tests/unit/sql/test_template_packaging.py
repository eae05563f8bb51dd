"""The built-in templates are package data, found through the package; a project's own
templates/ folder overrides them by file name, and deleting the override restores them."""
from __future__ import annotations

import re

from pathlib import Path

import pytest

import framework
from framework.project import load
from framework.sql import environment
from framework.sql.environment import BUILTIN_TEMPLATES, environment as sql_environment
from framework.sql.render import render_statement

PACKAGE_DIR = Path(framework.__file__).resolve().parent


@pytest.fixture(autouse=True)
def _fresh_templates():
    environment.reset_template_cache()
    yield
    environment.reset_template_cache()


def test_builtin_templates_live_inside_the_package():
    builtin = Path(str(BUILTIN_TEMPLATES))
    assert builtin == PACKAGE_DIR / "sql" / "templates"
    assert {"detect.sql.j2", "merge.sql.j2", "ddl.sql.j2"} <= {p.name for p in builtin.iterdir()}
    env = sql_environment(None, "duckdb")
    assert Path(env.get_template("_dialect.sql.j2").filename).parent == builtin / "duckdb"
    assert Path(env.get_template("detect.sql.j2").filename).parent == builtin


def test_the_repository_templates_folder_holds_no_builtin(repo_root):
    """The top-level templates/ is the example's override folder, not where built-ins live:
    a wheel without it must render everything."""
    assert not list((repo_root / "templates").rglob("*.j2"))


def test_a_project_override_changes_the_sql_and_deleting_it_restores_the_builtin(project_dir):
    builtin_sql = render_statement(load(project_dir), "rosters", "detect", "duckdb").sql
    assert "hash(" in builtin_sql

    override = project_dir / "templates" / "duckdb" / "_dialect.sql.j2"
    override.parent.mkdir(parents=True)
    # every call of DuckDB's hash() (not the macro named row_hash)
    override.write_text(re.sub(r"(?<!\w)hash\(", "md5_number(", (BUILTIN_TEMPLATES / "duckdb" / "_dialect.sql.j2").read_text()))
    environment.reset_template_cache()
    overridden = render_statement(load(project_dir), "rosters", "detect", "duckdb").sql
    assert "md5_number(" in overridden and "hash(" not in overridden
    # the other dialect still uses the built-in
    assert "md5_number(" not in render_statement(load(project_dir), "rosters", "detect", "bigquery").sql

    override.unlink()
    environment.reset_template_cache()
    assert render_statement(load(project_dir), "rosters", "detect", "duckdb").sql == builtin_sql


def test_a_project_may_add_a_template_of_its_own(project_dir):
    """Extending, not only overriding: a new macro file next to an override that imports it."""
    folder = project_dir / "templates"
    folder.mkdir()
    (folder / "_house.sql.j2").write_text("{% macro banner() %}-- house rules{% endmacro %}\n")
    (folder / "ddl.sql.j2").write_text("{% import '_house.sql.j2' as h %}{% from '_table.sql.j2' import create_table %}"
                                       "{{ h.banner() }}\n{{ create_table(table.fqn, table.columns, [], []) }}\n")
    sql = render_statement(load(project_dir), "rosters", "ddl", "duckdb").sql
    assert sql.startswith("-- house rules") and "raw.rosters" in sql
