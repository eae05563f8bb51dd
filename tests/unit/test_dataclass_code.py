"""The kept code of dataclass methods (framework.dataclass_code): a class made with the table
behaves exactly as one made by stock ``dataclasses``, the table is written by a process that
compiled something new and reused by the next one, and what cannot be used is ignored."""
from __future__ import annotations

import dataclasses
import inspect
import json
import marshal
import os
import subprocess
import sys
import types
from pathlib import Path

import pytest

import framework.cli  # noqa: F401 - the pipectl command installs the table
from framework import dataclass_code


SHAPE = ("from __future__ import annotations\nimport dataclasses\n"
         "class Shape:\n    \"\"\"doc\"\"\"\n    name: str\n    size: int = 3\n"
         "    tags: tuple[str, ...] = dataclasses.field(default_factory=tuple)\n")


def _make(frozen: bool, module: str = "framework._test_shapes") -> type:
    """``Shape`` defined in a module named ``module`` (its package decides whether it is kept)."""
    mod = types.ModuleType(module)
    sys.modules[module] = mod
    try:
        exec(SHAPE, mod.__dict__)  # noqa: S102 - a class defined at run time, in its own module
        return dataclasses.dataclass(frozen=frozen)(mod.Shape)
    finally:
        del sys.modules[module]


def _with_builtin_exec(frozen: bool) -> type:
    """The same class made by dataclasses' own ``exec`` (the table uninstalled)."""
    installed = getattr(dataclasses, "exec", None) is dataclass_code._exec
    dataclass_code.uninstall()
    try:
        return _make(frozen)
    finally:
        if installed:
            dataclasses.exec = dataclass_code._exec


@pytest.mark.parametrize("frozen", [False, True])
def test_a_class_made_through_the_table_is_the_stock_class(frozen):
    assert getattr(dataclasses, "exec", None) is dataclass_code._exec  # installed by the pipectl command (framework.cli)
    stock, kept = _with_builtin_exec(frozen), _make(frozen)
    assert any("tags=" in source for source in dataclass_code._used)  # made through the table
    _make(frozen)  # a hit: the code object comes from the table
    for name in ("__init__", "__repr__", "__eq__", "__hash__", "__setattr__", "__delattr__"):
        a, b = stock.__dict__.get(name), kept.__dict__.get(name)
        assert (a is None) == (b is None), name
        if hasattr(a, "__code__"):  # a generated method (a mutable class's __hash__ is None)
            assert a.__code__.co_code == b.__code__.co_code, name
            assert a.__code__.co_consts == b.__code__.co_consts, name
            assert a.__qualname__ == b.__qualname__, name
    # annotations are the objects, not strings: no __future__ flag leaked into the compilation
    assert kept.__init__.__annotations__ == stock.__init__.__annotations__
    assert inspect.signature(kept) == inspect.signature(stock)
    obj = kept("a")
    assert repr(obj) == repr(stock("a")) == "Shape(name='a', size=3, tags=())"
    assert obj == kept("a", 3, ()) and obj != kept("b")
    if frozen:
        assert hash(obj) == hash(kept("a"))
        with pytest.raises(dataclasses.FrozenInstanceError):
            obj.name = "b"


def test_only_the_classes_of_pipectl_and_duckdb_are_kept(monkeypatch):
    """A project's or a test's dataclass compiles as usual and never grows the table."""
    monkeypatch.setattr(dataclass_code, "_codes", {})
    monkeypatch.setattr(dataclass_code, "_used", set())
    monkeypatch.setattr(dataclass_code, "_new", 0)
    made = _make(True, module="my_project.hooks")
    assert made("a") == made("a") and dataclass_code._codes == {} and dataclass_code._new == 0
    _make(True, module="duckdb._test_shapes")
    assert dataclass_code._new == len(dataclass_code._codes) == 6  # init, repr, eq, setattr, delattr, hash


def test_the_table_is_written_once_and_reused_by_the_next_process(tmp_path):
    """A fresh interpreter with an empty cache folder compiles and writes the table at exit;
    the next one compiles nothing of what the first did (every dataclass of the run path)."""
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path)}
    env.pop("PIPECTL_NO_CACHE", None)
    code = ("import json, framework.cli, framework.drive.session, framework.drive.pipeline\n"
            "from framework import dataclass_code as d\nprint(json.dumps([d._new, len(d._codes), d.cache_path()]))")
    first = json.loads(subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                                      check=True).stdout)
    path = Path(first[2])
    assert path == tmp_path / "pipectl" / f"dataclass_code.v2.{sys.implementation.cache_tag}.marshal"
    assert first[0] > 50 and path.exists()  # compiled dozens of methods, kept them
    second = json.loads(subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                                       check=True).stdout)
    assert second[0] == 0 and second[1] >= first[1]
    stamp = path.stat().st_mtime_ns
    subprocess.run([sys.executable, "-c", code], env=env, check=True, capture_output=True)
    assert path.stat().st_mtime_ns == stamp  # nothing new: not rewritten


def test_a_foreign_or_broken_table_is_ignored(tmp_path, monkeypatch):
    path = tmp_path / "t.marshal"
    assert dataclass_code._load(str(path)) == {}  # missing
    path.write_bytes(b"\x00\x01\x02\x03" + marshal.dumps({"x": compile("1", "<s>", "eval")}))
    assert dataclass_code._load(str(path)) == {}  # another Python's magic number
    path.write_bytes(dataclass_code._MAGIC + marshal.dumps({"x": 1})[:-3])
    assert dataclass_code._load(str(path)) == {}  # truncated
    path.write_bytes(dataclass_code._MAGIC + marshal.dumps([1, 2]))
    assert dataclass_code._load(str(path)) == {}  # not a table


def test_save_merges_what_other_processes_wrote_and_survives_a_read_only_folder(tmp_path, monkeypatch):
    path = tmp_path / "pipectl" / "t.marshal"
    path.parent.mkdir()
    other = {"def a(): pass": compile("def a(): pass", "<string>", "exec", dont_inherit=True)}
    path.write_bytes(dataclass_code._MAGIC + marshal.dumps(other))
    mine = "def b(): pass"
    monkeypatch.setattr(dataclass_code, "_path", str(path))
    monkeypatch.setattr(dataclass_code, "_codes", {mine: compile(mine, "<string>", "exec", dont_inherit=True)})
    monkeypatch.setattr(dataclass_code, "_used", {mine})
    monkeypatch.setattr(dataclass_code, "_new", 1)
    dataclass_code.save()
    assert set(dataclass_code._load(str(path))) == {"def a(): pass", mine} and dataclass_code._new == 0
    # past the bound (old versions of edited classes), only what this process used is kept
    monkeypatch.setattr(dataclass_code, "_MAX_ENTRIES", 1)
    monkeypatch.setattr(dataclass_code, "_new", 1)
    dataclass_code.save()
    assert set(dataclass_code._load(str(path))) == {mine}
    monkeypatch.setattr(dataclass_code, "_new", 1)
    monkeypatch.setattr(dataclass_code, "_path", str(tmp_path / "file-not-folder" / "t.marshal"))
    (tmp_path / "file-not-folder").write_text("")
    dataclass_code.save()  # cannot be written: nothing kept, no error
    assert dataclass_code._new == 1 and list(tmp_path.glob("pipectl/*.tmp")) == []


def test_where_the_table_is_kept(monkeypatch, tmp_path):
    monkeypatch.delenv("PIPECTL_NO_CACHE", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert dataclass_code.cache_path() == str(tmp_path / "pipectl" / f"dataclass_code.v2.{sys.implementation.cache_tag}.marshal")
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert dataclass_code.cache_path() == str(tmp_path / "home" / ".cache" / "pipectl"
                                              / f"dataclass_code.v2.{sys.implementation.cache_tag}.marshal")
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/dir")
    assert dataclass_code.cache_path() is None
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.setenv("PIPECTL_NO_CACHE", "1")
    assert dataclass_code.cache_path() is None


def test_importing_the_library_leaves_dataclasses_alone():
    """A program that uses pipectl as a library keeps the standard library as it is: only the
    pipectl command (framework.cli) routes dataclasses' compilations through the table."""
    code = ("import dataclasses, framework, framework.drive.session\n"
            "assert not hasattr(dataclasses, 'exec'), 'the library patched dataclasses'\n"
            "import framework.cli\n"
            "from framework import dataclass_code\n"
            "assert dataclasses.exec is dataclass_code._exec\n")
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
