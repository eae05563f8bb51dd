"""`pipectl validate` on an unchanged project replays the last run's diagnostics without
loading anything; any change to what the run depended on makes it check again."""
from __future__ import annotations

import os
import sys

import pytest

from framework import validation
from framework.cli import main
from framework.validation import replay
from projects import PROCESSORS, SQL, write_project

BROKEN = PROCESSORS.replace("inputs: [orders_raw]", "inputs: [order_raw]")


@pytest.fixture(autouse=True)
def caching(monkeypatch):
    monkeypatch.delenv("PIPECTL_NO_CACHE", raising=False)


def _validate(root, capsys, *extra):
    code = main(["-p", str(root), "validate", "--format", "json", *extra])
    return code, capsys.readouterr().out


def _no_loading(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("the project was loaded: the record was not replayed")

    monkeypatch.setattr(validation, "load_project", refuse)


def test_unchanged_project_is_replayed_without_loading(tmp_path, capsys, monkeypatch):
    write_project(tmp_path, BROKEN)
    first = _validate(tmp_path, capsys)
    assert first[0] == 1 and "unknown input 'order_raw'" in first[1]
    assert (tmp_path / ".pipectl" / "cache" / "validate.json").is_file()
    modules = set(sys.modules)
    _no_loading(monkeypatch)
    assert _validate(tmp_path, capsys) == first
    assert "sqlglot" in modules or "sqlglot" not in set(sys.modules) - modules


def test_same_size_same_mtime_edit_of_a_transform_is_checked_again(tmp_path, capsys):
    write_project(tmp_path)
    assert _validate(tmp_path, capsys)[0] == 0
    path = tmp_path / "sql" / "store_totals.sql"
    stat = path.stat()
    text = path.read_text()
    edited = text.replace("SUM(amount)", "SUM(amuont)")
    assert len(edited) == len(text)
    path.write_text(edited)
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))  # a rewrite in the same clock tick
    code, out = _validate(tmp_path, capsys)
    assert code == 1 and "amuont" in out


@pytest.mark.parametrize("change", ["manifest", "missing transform appears", "template override", "options", "code"])
def test_what_invalidates_the_record(tmp_path, capsys, monkeypatch, change):
    clean = change in ("missing transform appears", "template override")  # SQL is checked only without errors
    root = write_project(tmp_path, PROCESSORS if clean else BROKEN)
    if change == "missing transform appears":
        (root / "sql" / "store_totals.sql").unlink()
    before = _validate(root, capsys)
    if change == "manifest":
        (root / "processors.yaml").write_text(PROCESSORS)
    elif change == "missing transform appears":
        (root / "sql" / "store_totals.sql").write_text(SQL["sql/store_totals.sql"])
    elif change == "template override":
        (root / "templates").mkdir()
        (root / "templates" / "detect.sql.j2").write_text("SELECT 1 FROM {{ nonsense(\n")
        from framework.sql import environment

        environment._environment.cache_clear()  # Jinja environments live per process; a CLI run is one
    elif change == "code":
        monkeypatch.setattr(replay, "_code_hash", lambda: "another pipectl")
    calls = []
    original = validation.load_project

    def counting(*args, **kwargs):
        calls.append(1)
        return original(*args, **kwargs)

    monkeypatch.setattr(validation, "load_project", counting)
    after = _validate(root, capsys, *(["--no-sql"] if change == "options" else []))
    assert calls == [1]  # checked again, not replayed
    if change in ("manifest", "missing transform appears"):
        assert before[0] == 1 and after[0] == 0
    if change == "template override":
        assert after[0] == 1 and "detect.sql.j2" in after[1]


def test_python_transform_outside_the_project_is_never_replayed(tmp_path, capsys, monkeypatch):
    text = PROCESSORS.replace("transform: {sql: sql/store_totals.sql}", "transform: {python: json:dumps}")
    root = write_project(tmp_path, text)
    _validate(root, capsys)
    assert not (root / ".pipectl" / "cache" / "validate.json").exists()


def test_no_cache_disables_the_record(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("PIPECTL_NO_CACHE", "1")
    write_project(tmp_path)
    _validate(tmp_path, capsys)
    assert not (tmp_path / ".pipectl" / "cache" / "validate.json").exists()


def test_a_corrupt_record_is_a_miss(tmp_path, capsys):
    write_project(tmp_path, BROKEN)
    first = _validate(tmp_path, capsys)
    (tmp_path / ".pipectl" / "cache" / "validate.json").write_text('{"key": [1, 2')
    assert _validate(tmp_path, capsys) == first
