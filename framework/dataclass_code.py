"""Compiled code of dataclass methods, kept across processes (start-up of every command).

Why: on Python 3.10-3.12 ``@dataclass`` writes the source of each generated method
(``__init__``, ``__repr__``, ``__eq__``, ``__hash__``, a frozen class's ``__setattr__`` and
``__delattr__``) and compiles it with ``exec``, one compilation per method, every time the
class is created, i.e. at every import: ~0.5-0.7 ms a class, ~40 ms for the ~75 classes a
one-entity update imports (docs/performance.md, start-up). Python caches the bytecode of
modules (``__pycache__/*.pyc``) but not of this generated code.

What: :func:`install` gives the :mod:`dataclasses` module an ``exec`` that looks the source
up in a table of code objects before compiling it, and the table is kept, marshalled, in
the user's cache folder: ``$XDG_CACHE_HOME/pipectl/`` (default ``~/.cache/pipectl/``),
``dataclass_code.v2.<cache tag>.marshal`` (``cpython-311``: one file per Python version, as
``__pycache__`` has). It is not kept beside the package's bytecode: an installed package's
folder is often read-only, and ``PYTHONDONTWRITEBYTECODE`` asks for nothing to be written
there. ``PIPECTL_NO_CACHE=1`` turns it off, like pipectl's other caches.

Only the classes of the packages every run command imports are kept: pipectl's own
(``framework``) and DuckDB's (its Python package defines ~30 dataclasses, ~9 ms of its
import). Any other dataclass (a project's hooks, a test module, another library) compiles as
usual and is not written, so what other code does in a process using pipectl never grows
the table. A process that compiled something new rewrites it with what it used plus what
the file held, or, past ``_MAX_ENTRIES`` (old versions of classes edited since), with only
what it used.

The behaviour is exactly the stock one: the key is the full source text, compiled as
:mod:`dataclasses` compiles it (no inherited ``__future__`` flags, the caller's globals when
none are given), so a hit returns the code object compiling the same text gives; a class
whose fields, defaults or options change has new text and compiles. The file is rewritten
(atomically, merged with what other processes wrote meanwhile) only by a process that
compiled something new, at exit; a file written by another Python (its bytecode magic
number differs), truncated or unreadable is ignored; a folder that cannot be written keeps
nothing (a read-only home in a container: every process compiles, as without the table).

Kept here, below every other layer, because it must be installed before the first
dataclass of pipectl is created (``framework/__init__.py`` installs it).
"""
from __future__ import annotations

import atexit
import builtins
import marshal
import os
import sys
from types import CodeType
from typing import Any

# the bytecode magic number of this interpreter (what a .pyc file starts with); the frozen
# import machinery is always loaded, importlib.util may not be
_MAGIC: bytes = sys.modules["_frozen_importlib_external"].MAGIC_NUMBER
_MAX_ENTRIES = 2048  # about 2.5x what pipectl and DuckDB define; beyond it, keep what this process used
_PACKAGES = ("framework", "duckdb")  # whose classes are kept (top-level package of the class's module)
_VERSION = 2  # of the file (in its name): 1 kept every class of every process

_codes: dict[str, CodeType] = {}
_used: set[str] = set()
_new = 0
_path: str | None = None
_loaded = False


def cache_path() -> str | None:
    """Where the table is kept; ``None`` when it is not (``PIPECTL_NO_CACHE``, no home, an
    interpreter without a bytecode cache tag)."""
    tag = sys.implementation.cache_tag
    if tag is None or os.environ.get("PIPECTL_NO_CACHE"):
        return None
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    if not os.path.isabs(base):  # no home to expand ("~" left as is), or a relative XDG value: keep nothing
        return None
    return os.path.join(base, "pipectl", f"dataclass_code.v{_VERSION}.{tag}.marshal")


def _load(path: str) -> dict[str, CodeType]:
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError:  # not written yet, or not readable: compile as usual
        return {}
    if data[:len(_MAGIC)] != _MAGIC:
        return {}
    try:
        table = marshal.loads(data[len(_MAGIC):])
    except (EOFError, ValueError, TypeError):  # truncated or corrupt: start again
        return {}
    return table if isinstance(table, dict) else {}


def _exec(source: Any, globals: Any = None, locals: Any = None) -> None:
    """``exec`` for :mod:`dataclasses`: the same effect, compiled once per source text."""
    global _new
    if globals is None:  # what a bare exec() inside dataclasses would use: the caller's globals
        globals = sys._getframe(1).f_globals
    if not isinstance(source, str) or not _kept(globals):
        builtins.exec(source, globals, locals)
        return
    if not _loaded:  # read on the first kept class, not at install: `pipectl --help` makes none
        _load_table()
    code = _codes.get(source)
    if code is None:
        code = compile(source, "<string>", "exec", dont_inherit=True)  # as dataclasses' own exec compiles it
        _codes[source] = code
        _new += 1
    _used.add(source)
    builtins.exec(code, globals, locals)


def _kept(globals: Any) -> bool:
    """Whether the class being made belongs to a package whose classes are kept (dataclasses
    passes the globals of the class's module)."""
    name = globals.get("__name__") if isinstance(globals, dict) else None
    return isinstance(name, str) and name.partition(".")[0] in _PACKAGES


def _load_table() -> None:
    global _loaded
    _loaded = True
    if _path is not None:
        _codes.update({**_load(_path), **_codes})


def save() -> None:
    """Write the table if this process compiled something it did not hold (at exit)."""
    global _new
    if not _new or _path is None:
        return
    table = {**_load(_path), **_codes}  # what other processes added since this one loaded it
    if len(table) > _MAX_ENTRIES:  # stale versions of edited classes: keep what this process used
        table = {source: _codes[source] for source in _used}
    data = _MAGIC + marshal.dumps(table)
    tmp = f"{_path}.{os.getpid()}.tmp"
    try:
        os.makedirs(os.path.dirname(_path), exist_ok=True)
        with open(tmp, "wb") as f:
            f.write(data)
        os.replace(tmp, _path)  # atomic: a concurrent reader sees the old table or the new one
    except OSError:  # a read-only install keeps no table, as it keeps no .pyc files
        try:
            os.unlink(tmp)
        except OSError:
            pass
        return
    _new = 0


def install() -> None:
    """Route :mod:`dataclasses`' compilations through the kept table (idempotent)."""
    global _path
    import dataclasses

    if getattr(dataclasses, "exec", None) is _exec:
        return
    _path = cache_path()
    dataclasses.exec = _exec  # type: ignore[attr-defined]  # found before the builtin by name lookup
    atexit.register(save)


def uninstall() -> None:
    """Give :mod:`dataclasses` back the builtin ``exec`` (tests)."""
    import dataclasses

    if getattr(dataclasses, "exec", None) is _exec:
        del dataclasses.exec  # type: ignore[attr-defined]
    atexit.unregister(save)
