"""Compiled templates are kept across runs (Jinja's bytecode cache in .pipectl/cache/):
a new process renders without compiling, and still sees an edited template."""
from __future__ import annotations

import shutil

import jinja2
import pytest

from framework.sql import environment as env_module
from framework.sql.render import render_statement
from framework.manifest import load_project


@pytest.fixture
def compiles(monkeypatch):
    calls: list[str] = []
    original = jinja2.Environment.compile

    def counting(self, source, name=None, filename=None, raw=False, defer_init=False):
        calls.append(name)
        return original(self, source, name, filename, raw, defer_init)

    monkeypatch.setattr(jinja2.Environment, "compile", counting)
    env_module.reset_template_cache()
    yield calls
    env_module.reset_template_cache()


def _render(root, kind="ddl"):
    project, _ = load_project(root)
    return render_statement(project, "team_summary", kind, "duckdb").sql


def test_second_run_loads_compiled_templates(project_dir, monkeypatch, compiles):
    monkeypatch.delenv("PIPECTL_NO_CACHE", raising=False)
    shutil.rmtree(project_dir / ".pipectl", ignore_errors=True)  # the fixture's own runs may have left one
    first = _render(project_dir)
    assert compiles and list((project_dir / ".pipectl" / "cache").glob("jinja-*/*.cache"))
    compiles.clear()
    env_module.reset_template_cache()  # what a new process starts with
    assert _render(project_dir) == first and compiles == []
    (project_dir / "templates").mkdir()
    (project_dir / "templates" / "ddl.sql.j2").write_text("-- edited ddl\nSELECT 1\n")
    env_module.reset_template_cache()
    assert _render(project_dir).startswith("-- edited ddl") and "ddl.sql.j2" in compiles


def test_no_cache_env_disables_it(project_dir, monkeypatch, compiles):
    monkeypatch.setenv("PIPECTL_NO_CACHE", "1")
    shutil.rmtree(project_dir / ".pipectl", ignore_errors=True)
    _render(project_dir)
    assert not (project_dir / ".pipectl").exists()
