"""Rendered statements kept across commands in ``.pipectl/cache/rendered.json``.

Why: a one-entity update renders the same ~30 statements every time it runs (detection,
writes, fingerprints, data tests), and rendering them meant importing Jinja, loading the
templates and running them: ~40 ms of a command that runs every few minutes. What a
statement renders to depends only on the resolved model, the templates and pipectl's SQL
code, so while none of those changed the text of the last run is the answer.

What a lookup is keyed by:

* the **model**: only a project that :mod:`framework.project.cache` loaded or recorded has
  a token (the digest of its recorded bytes, so any change of the manifests, of pipectl's
  manifest code, of the folder, changes it); a project built or changed in memory (a
  target's prefixes, a test's fixture) has none and always renders;
* the **templates**: the content of every file of the project's ``templates/`` folder, the
  built-in templates, pipectl's SQL and manifest modules (path, modification time, size, as
  Python's bytecode cache trusts source files), Jinja's and Python's versions;
* the **call**: the template and dialect and every argument, walked field by field (model
  objects included); a call whose arguments hold a function (the merge's entity filter) is
  not looked up at this level: :func:`framework.sql.render.render_statement` keys the merge
  and the transform by processor, flags and the content of the transform file instead.

Only processes that load projects through the project cache use it, and
``PIPECTL_NO_CACHE=1`` turns both off. A record that fails its checksum is ignored with a
warning and rewritten; entries never outlive the model and templates they were rendered
from (the header names them, a different header starts an empty record).
"""
from __future__ import annotations

import atexit
import dataclasses
import hashlib
import json
import logging
import os
import sys
import threading
import weakref
from pathlib import Path
from typing import Any

from framework.errors import Location
from framework.sql import cache_files

log = logging.getLogger(__name__)

FORMAT = 1
FILE = "rendered.json"
MAGIC = b"pipectl-rendered\n"
MAX_ENTRIES = 4096  # run-varying arguments would otherwise grow the record forever
_SQL_DIR = Path(__file__).resolve().parent
_CODE_DIRS = (_SQL_DIR, _SQL_DIR.parent / "manifest")  # templates and rendering; the model's methods
_PROJECT_TEMPLATES = "templates"  # framework.sql.environment.PROJECT_FOLDER (importing it imports Jinja)

_tokens: dict[int, str] = {}
_memos: dict[str, "Memo"] = {}
_code: list[Any] = []


class NotKeyable(Exception):
    """An argument the key cannot describe faithfully (a function): render, do not look up."""


def register(project: Any, digest: str) -> None:
    """Mark ``project`` (as loaded from or stored to the project cache) with its model token."""
    key = id(project)
    _tokens[key] = digest
    weakref.finalize(project, _tokens.pop, key, None)


def memo_for(project: Any) -> "Memo | None":
    """The rendered-statement memo of ``project``, or None when it cannot have one."""
    token = _tokens.get(id(project))
    if token is None or os.environ.get("PIPECTL_NO_CACHE"):
        return None
    root = str(project.root)
    memo = _memos.get(root)
    if memo is None or memo.token != token:
        memo = _memos[root] = Memo(Path(root), token)
    return memo


def reset() -> None:
    """Forget every memo of this process (with the template cache: templates were edited).
    What they rendered is written first: it is right for the templates it was rendered from."""
    flush_all()
    _memos.clear()
    _code.clear()


@atexit.register
def flush_all() -> None:
    """Write every memo with statements not written yet (at exit: a command renders its
    statements over its whole run, and writing the record after each one would rewrite it
    once per statement)."""
    for memo in list(_memos.values()):
        memo.flush()


def _code_state() -> list[Any]:
    """pipectl's SQL modules and built-in templates, Jinja, Python: fixed for a process."""
    if not _code:
        files = []
        for folder in _CODE_DIRS:
            for dirpath, dirnames, filenames in os.walk(folder):
                dirnames[:] = sorted(d for d in dirnames if d != "__pycache__")
                files += [cache_files.stamp(os.path.join(dirpath, f)) for f in sorted(filenames) if f.endswith((".py", ".j2", ".sql"))]
        _code.extend([FORMAT, sys.version, files, cache_files.module_stamp("jinja2")])
    return _code


def _project_templates(root: Path) -> list[Any]:
    """Every file of the project's ``templates/`` with the hash of its content."""
    out = []
    for dirpath, dirnames, filenames in os.walk(root / _PROJECT_TEMPLATES):
        dirnames.sort()
        for name in sorted(filenames):
            path = Path(dirpath) / name
            try:
                out.append([str(path.relative_to(root)), hashlib.blake2b(path.read_bytes(), digest_size=16).hexdigest()])
            except OSError:
                out.append([str(path.relative_to(root)), None])
    return out


def canonical(value: Any) -> Any:
    """A plain, deterministic description of a render argument (raises NotKeyable)."""
    if value is None or isinstance(value, (str, int, float, bool)):
        return [type(value).__name__, value]
    if isinstance(value, Location):
        return ["Location", value.file, value.line, value.column]
    if isinstance(value, tuple) and hasattr(value, "_fields"):  # NamedTuple (Column)
        return [type(value).__qualname__, [[f, canonical(getattr(value, f))] for f in value._fields]]
    if isinstance(value, (list, tuple)):
        return [type(value).__name__, [canonical(v) for v in value]]
    if isinstance(value, (set, frozenset)):
        return [type(value).__name__, sorted((canonical(v) for v in value), key=json.dumps)]
    if isinstance(value, dict):
        return ["dict", sorted([str(k), canonical(v)] for k, v in value.items())]
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return [type(value).__qualname__, [[f.name, canonical(getattr(value, f.name))] for f in dataclasses.fields(value)]]
    raise NotKeyable(type(value).__name__)


def call_key(*parts: Any) -> str:
    """The digest of one render call (raises NotKeyable)."""
    return hashlib.blake2b(json.dumps(canonical(list(parts)), separators=(",", ":")).encode(), digest_size=16).hexdigest()


class Memo:
    """One project's rendered statements: read once per process; new ones are written when
    their count reaches a power of two and at exit (a few writes per command, whatever the
    project's size)."""

    def __init__(self, root: Path, token: str):
        self.root, self.token = root, token
        self.path = cache_files.cache_dir(root) / FILE
        self.header = hashlib.blake2b(json.dumps([token, _code_state(), _project_templates(root)]).encode(),
                                      digest_size=16).hexdigest()
        self._entries: dict[str, list[Any]] | None = None
        self._dirty = False
        self._lock = threading.Lock()  # a fan-out renders from several threads

    def get(self, key: str) -> tuple[str, tuple[str, ...]] | None:
        found = self._load().get(key)
        return (found[0], tuple(found[1])) if found is not None else None

    def put(self, key: str, sql: str, params: tuple[str, ...]) -> None:
        entries = self._load()
        with self._lock:
            if len(entries) >= MAX_ENTRIES or key in entries:
                return
            entries[key] = [sql, list(params)]
            self._dirty = True
            n = len(entries)
        if n & (n - 1) == 0:
            self.flush()

    def flush(self) -> None:
        """Write the record if it holds statements not written yet (and the project's
        folder still exists: a removed folder is not recreated for a cache)."""
        with self._lock:
            if not self._dirty or self._entries is None or not self.root.is_dir():
                return
            body = json.dumps({"header": self.header, "entries": self._entries}, separators=(",", ":")).encode("utf-8")
            self._dirty = False
        try:
            cache_files.write(self.path, MAGIC + hashlib.blake2b(body, digest_size=16).digest() + body)
        except OSError as exc:  # a read-only checkout: rendering is unaffected
            log.info("not writing rendered statements to %s: %s", self.path, exc)

    def _load(self) -> dict[str, list[Any]]:
        with self._lock:
            if self._entries is None:
                self._entries = self._read()
            return self._entries

    def _read(self) -> dict[str, list[Any]]:
        try:
            data = self.path.read_bytes()
        except OSError:
            return {}
        try:
            if not data.startswith(MAGIC) or len(data) < len(MAGIC) + 16:
                raise ValueError("not a pipectl record of rendered statements")
            checksum, body = data[len(MAGIC):len(MAGIC) + 16], data[len(MAGIC) + 16:]
            if hashlib.blake2b(body, digest_size=16).digest() != checksum:
                raise ValueError("checksum mismatch: the file was truncated or changed")
            record = json.loads(body.decode("utf-8"))
            if record.get("header") != self.header:
                return {}  # another model or other templates: a plain miss
            entries = record["entries"]
            if not isinstance(entries, dict) or not all(
                    isinstance(v, list) and len(v) == 2 and isinstance(v[0], str) and isinstance(v[1], list)
                    for v in entries.values()):
                raise ValueError("malformed entries")
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            log.warning("ignoring the damaged cache of rendered statements %s (%s): rendering again and rewriting it",
                        self.path, exc)
            return {}
        return entries
