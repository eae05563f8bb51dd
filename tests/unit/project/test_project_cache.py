"""`framework.project.load` reuses the project the last command loaded from the same files
(``.pipectl/cache/project.bin``); anything the load depended on that changes is a miss, and a
damaged record is never used: it is ignored with a warning and rewritten."""
from __future__ import annotations

import logging
import os
import subprocess
import sys

import pytest

import framework.project
from framework.errors import ManifestError
from framework.project import cache, load
from projects import PROCESSORS, write_project


@pytest.fixture(autouse=True)
def caching(monkeypatch):
    monkeypatch.delenv("PIPECTL_NO_CACHE", raising=False)


def _record(root):
    return root / ".pipectl" / "cache" / cache.FILE


def _refuse_full_load(monkeypatch):
    def refuse(root):
        raise AssertionError("the manifests were loaded in full: the record was not reused")

    monkeypatch.setattr(framework.project, "_load", refuse)


def _loads_in_full(monkeypatch) -> list:
    calls: list = []
    original = framework.project._load

    def counting(root):
        calls.append(root)
        return original(root)

    monkeypatch.setattr(framework.project, "_load", counting)
    return calls


def test_a_second_load_reuses_the_record_and_equals_a_full_load(tmp_path, monkeypatch):
    root = write_project(tmp_path)
    first = load(root)
    assert _record(root).is_file()
    _refuse_full_load(monkeypatch)
    again = load(root)
    assert again == first and again is not first
    proc = again.processors["customer_totals"]
    # locations come back resolved, exactly as the full load reports them
    full = first.processors["customer_totals"]
    assert str(proc.location) == str(full.location) and proc.location.line > 0
    assert str(proc.transform.location) == str(full.transform.location) and proc.transform.location.column > 0


def test_a_hit_imports_neither_the_yaml_parser_nor_the_rules(tmp_path):
    root = write_project(tmp_path)
    load(root)
    code = ("import sys; from framework.project import load; load(sys.argv[1]);"
            "print([m for m in ('yaml', 'framework.manifest.loader', 'framework.manifest.resolver', "
            "'framework.graph.rules', 'jsonschema_rs', 'networkx') if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code, str(root)], capture_output=True, text=True, check=True,
                         cwd=os.getcwd()).stdout
    assert out.strip().splitlines()[-1] == "[]"


def test_same_size_same_mtime_edit_of_the_manifest_is_a_miss(tmp_path, monkeypatch):
    root = write_project(tmp_path)
    assert load(root).processors["orders_raw"].aliases == ("OrdersRawProcessor",)
    path = root / "processors.yaml"
    stat = path.stat()
    edited = PROCESSORS.replace("aliases: [OrdersRawProcessor]", "aliases: [OrdersRawProcessot]")
    assert len(edited) == len(PROCESSORS)
    path.write_text(edited)
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))  # a rewrite in the same clock tick
    calls = _loads_in_full(monkeypatch)
    assert load(root).processors["orders_raw"].aliases == ("OrdersRawProcessot",)
    assert len(calls) == 1


@pytest.mark.parametrize("change", ["topics", "transform removed", "code", "working directory"])
def test_what_invalidates_the_record(tmp_path, monkeypatch, change):
    root = write_project(tmp_path / "project")
    load(root)
    if change == "topics":
        path = root / "topics.yaml"
        path.write_text(path.read_text().replace("ack_deadline_seconds", "ack_deadline_seconds") + "\n# edited\n")
    elif change == "transform removed":
        (root / "sql" / "store_totals.sql").unlink()
    elif change == "code":
        monkeypatch.setattr(cache, "_code_state", lambda: ["another pipectl"])
    elif change == "working directory":
        monkeypatch.chdir(tmp_path)  # locations name files relative to it
    calls = _loads_in_full(monkeypatch)
    if change == "transform removed":
        with pytest.raises(ManifestError, match="store_totals.sql' does not exist"):
            load(root)
    else:
        load(root)
    assert len(calls) == 1


@pytest.mark.parametrize("damage", ["truncated", "byte flipped", "not a record", "empty"])
def test_a_damaged_record_is_ignored_with_a_warning_and_rewritten(tmp_path, monkeypatch, caplog, damage):
    root = write_project(tmp_path)
    expected = load(root)
    path = _record(root)
    data = path.read_bytes()
    if damage == "truncated":
        path.write_bytes(data[: len(data) // 2])
    elif damage == "byte flipped":  # inside the pickled project, past the header
        i = len(data) - 100
        path.write_bytes(data[:i] + bytes([data[i] ^ 0xFF]) + data[i + 1:])
    elif damage == "not a record":
        path.write_bytes(b"\x80\x04garbage that unpickles to nothing useful")
    else:
        path.write_bytes(b"")
    calls = _loads_in_full(monkeypatch)
    with caplog.at_level(logging.WARNING, logger="framework.project.cache"):
        assert load(root) == expected
    assert len(calls) == 1
    assert [r.levelno for r in caplog.records] == [logging.WARNING]
    assert "ignoring the damaged project cache" in caplog.records[0].getMessage()
    assert path.read_bytes() == data  # rebuilt: the same record as before the damage
    _refuse_full_load(monkeypatch)
    assert load(root) == expected


def test_a_record_that_checks_out_but_holds_another_folder_is_not_used(tmp_path, monkeypatch, caplog):
    """A record copied from another folder (same files, same code) names another root."""
    a, b = write_project(tmp_path / "a"), write_project(tmp_path / "b")
    load(a)
    (b / ".pipectl" / "cache").mkdir(parents=True)
    _record(b).write_bytes(_record(a).read_bytes())
    calls = _loads_in_full(monkeypatch)
    assert load(b).root == b.resolve()
    assert len(calls) == 1  # the key names the folder: a plain miss, no warning needed
    assert not caplog.records


def test_a_project_with_errors_is_never_recorded(tmp_path):
    root = write_project(tmp_path, PROCESSORS.replace("inputs: [orders_raw]", "inputs: [order_raw]"))
    for _ in range(2):
        with pytest.raises(ManifestError, match="unknown input 'order_raw'"):
            load(root)
    assert not _record(root).exists()


def test_no_cache_env_and_a_python_transform_on_sys_path_are_not_recorded(tmp_path, monkeypatch):
    root = write_project(tmp_path / "one")
    monkeypatch.setenv("PIPECTL_NO_CACHE", "1")
    load(root)
    assert not _record(root).exists()
    monkeypatch.delenv("PIPECTL_NO_CACHE")
    # a transform module outside the project, found on sys.path: the record could not see it change
    outside = tmp_path / "site"
    (outside / "shop_transforms").mkdir(parents=True)
    (outside / "shop_transforms" / "__init__.py").write_text("def totals(ctx):\n    return []\n")
    monkeypatch.syspath_prepend(str(outside))
    text = PROCESSORS.replace("sql: sql/store_totals.sql", "python: shop_transforms:totals")
    assert text != PROCESSORS
    other = write_project(tmp_path / "two", text)
    assert load(other).processors["store_totals"].transform.python == "shop_transforms:totals"
    assert not _record(other).exists()


def test_an_unwritable_cache_folder_only_costs_speed(tmp_path, monkeypatch):
    root = write_project(tmp_path)

    def refuse(path, data):
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(cache.cache_files, "write", refuse)
    assert load(root).processors["orders_raw"].phase == "raw"
    assert not _record(root).exists()
