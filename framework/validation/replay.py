"""Replay the diagnostics of the last ``pipectl validate`` when nothing it read has changed.

Why: at 10,000 processors even a run whose every statement is in the parse cache still
reads, resolves and renders the whole project (seconds, hundreds of MiB). A pre-commit
hook or an editor validates an unchanged project again and again; the answer is the same
as last time, so it is read back: no manifest loaded, no template rendered, sqlglot never
imported.

What the record holds (``.pipectl/cache/validate.json``, one record, the last run):

* ``key``: the format version, pipectl's code (a hash of the package's ``.py``, ``.j2`` and
  ``.json`` files), the sqlglot, Jinja2 and PyYAML versions, the Python version, the options
  (SQL checks, file checks), the project folder and the working directory (diagnostics name
  files relative to it);
* ``files``: every file the run's result depends on, with the hash of its content, or
  ``null`` when the run found it missing (a transform that appears must be checked): both
  manifests, ``pipectl.yaml``, every transform file, every Python transform's module file,
  everything under ``templates/`` (overrides by file name: a new file changes what renders);
* ``diagnostics`` and ``notes``: what the run reported, located;
* ``transforms`` (SQL file -> the processors it is the transform of) and ``spans``: which
  of those diagnostics each processor's transform check wrote (see
  :class:`framework.sql.checks.Spans`), so that after an edit to transform files only, those
  processors are checked again and their part replaced (:meth:`Replay.patch`).

Contents are hashed, not trusted by modification time (a file rewritten in the same clock
tick with the same size must still miss). A run whose result depends on something outside
the project (a Python transform module found on ``sys.path``, not under the project) is not
recorded. Any unreadable or malformed record is a miss, never an error.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import sys
from pathlib import Path
from typing import Any

from framework.errors import Location
from framework.manifest import PROCESSORS_FILE, TOPICS_FILE
from framework.manifest.diagnostics import Diagnostic, Diagnostics
from framework.manifest.model import Project
from framework.sql import cache_files
from framework.sql.cache_files import digest, file_hash

log = logging.getLogger(__name__)

FORMAT = 2  # 2: per-processor spans of the transform checks (incremental re-check)
RECORD = Path(".pipectl") / "cache" / "validate.json"
CONFIG_FILE = "pipectl.yaml"  # framework.config.CONFIG_FILE (a layer above: not imported)
TEMPLATES = "templates"       # framework.sql.environment.PROJECT_FOLDER (imports Jinja)
_CODE_SUFFIXES = (".py", ".j2", ".json")


def _code_hash() -> str:
    """pipectl's own code: a change to any rule, template or schema changes the answer."""
    import framework

    h = hashlib.blake2b(digest_size=16)
    base = Path(framework.__file__).resolve().parent
    for dirpath, dirnames, filenames in os.walk(base):
        dirnames[:] = sorted(d for d in dirnames if d != "__pycache__")
        for name in sorted(filenames):
            if name.endswith(_CODE_SUFFIXES):
                path = Path(dirpath) / name
                h.update(str(path.relative_to(base)).encode() + b"\0")
                h.update(path.read_bytes())
    return h.hexdigest()


def _versions() -> list[str]:
    from importlib.metadata import PackageNotFoundError, version

    out = [sys.version]
    for dist in ("sqlglot", "sqlglotc", "Jinja2", "PyYAML"):
        try:
            out.append(f"{dist}={version(dist)}")
        except PackageNotFoundError:
            out.append(f"{dist}=none")
    return out


class Replay:
    """The record of one project's last validate run: look it up, or store a new one."""

    def __init__(self, root: Path, check_sql: bool, check_files: bool):
        self.root = Path(root).resolve()
        self.path = self.root / RECORD
        self.key = digest(json.dumps([FORMAT, _code_hash(), _versions(), check_sql, check_files,
                                       str(self.root), os.getcwd()]).encode())

    # ---------------------------------------------------------------- lookup
    def lookup(self) -> Diagnostics | None:
        """The recorded diagnostics when the key and every recorded file still match.

        On a miss where only transform files changed (each existed then and exists now),
        and the record says which diagnostics each processor's transform check wrote,
        :attr:`changed` names the processors to check again (:meth:`patch`)."""
        self.changed: list[str] | None = None
        self.record: dict | None = None
        try:
            record = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        if not isinstance(record, dict) or record.get("key") != self.key:
            return None
        try:
            edited: list[str] = []
            hashes: dict[str, str | None] = {}
            for rel, digest in record["files"]:
                now = hashes[rel] = file_hash(self.root / rel)
                if now != digest:
                    edited.append(rel)
            if self._templates() != record["templates"]:
                return None
            if edited:
                self._incremental(record, edited, hashes)
                return None
            diags = _diagnostics(record)
        except (KeyError, TypeError, ValueError, OSError) as exc:
            log.info("ignoring validate record %s: %s", self.path, exc)
            self.changed = self.record = None
            return None
        return diags

    def _incremental(self, record: dict, edited: list[str], hashes: dict[str, str | None]) -> None:
        """Set :attr:`changed` when every edit is to the content of a SQL transform file: what
        such an edit can change is that file's processors' transform check and nothing else
        (the manifests, ``pipectl.yaml``, ``templates/`` and pipectl are as recorded, and a
        file that appeared or vanished changes the rules' result, so it checks everything)."""
        by_file = record.get("transforms")
        if not isinstance(by_file, dict) or record.get("spans") is None:
            return
        old = dict(record["files"])
        if any(rel not in by_file or old[rel] is None or hashes[rel] in (None, "dir") for rel in edited):
            return
        self.record = record
        self.record["files"] = [[rel, hashes[rel]] for rel, _ in record["files"]]
        self.changed = sorted({name for rel in edited for name in by_file[rel]})

    def patch(self, rechecked: dict[str, tuple[Diagnostics, Diagnostics]]) -> Diagnostics:
        """The recorded diagnostics with each rechecked processor's transform part replaced
        (``rechecked``: name -> what rendering and reporting its transform wrote), in the
        order a full run writes them; the record is updated and written back."""
        record = self.record
        assert record is not None
        old = _diagnostics(record)
        spans = record["spans"]
        if spans.get("start") is None:  # the recorded run did not check SQL: nothing to redo
            self._write(record)
            return old
        (si, sn), (ei, en) = spans["start"], spans["end"]
        items, notes = old.items[:si], old.notes[:sn]
        parts: dict[str, dict[str, list[list[Diagnostic]]]] = {"render": {}, "report": {}}
        for part in ("render", "report"):
            for name in spans["order"]:
                if name in rechecked:
                    new = rechecked[name][0 if part == "render" else 1]
                    found = [new.items, new.notes]
                else:
                    i0, n0, i1, n1 = spans[part].get(name, (0, 0, 0, 0))
                    found = [old.items[i0:i1], old.notes[n0:n1]]
                parts[part][name] = found
        new_spans: dict[str, Any] = {"order": spans["order"], "render": {}, "report": {}, "start": [len(items), len(notes)]}
        for part in ("render", "report"):
            for name in spans["order"]:
                got_items, got_notes = parts[part][name]
                i0, n0 = len(items), len(notes)
                items += got_items
                notes += got_notes
                if len(items) > i0 or len(notes) > n0:
                    new_spans[part][name] = [i0, n0, len(items), len(notes)]
        new_spans["end"] = [len(items), len(notes)]
        items += old.items[ei:]
        notes += old.notes[en:]
        diags = Diagnostics(items, notes)
        record.update(spans=new_spans, diagnostics=[d.to_dict() for d in items], notes=[d.to_dict() for d in notes])
        self._write(record)
        return diags

    # ---------------------------------------------------------------- store
    def store(self, project: Project | None, diags: Diagnostics, spans: Any = None) -> None:
        """Record the run (``spans``: a :class:`framework.sql.checks.Spans` of its transform
        checks, or None when the SQL was not checked)."""
        files = self._dependencies(project)
        if files is None:
            return
        transforms: dict[str, list[str]] = {}
        for proc in project.processors.values() if project is not None else ():
            if proc.transform.sql:
                transforms.setdefault(proc.transform.sql, []).append(proc.name)
        record = {"key": self.key, "files": [[rel, file_hash(self.root / rel)] for rel in files],
                  "templates": self._templates(), "transforms": transforms, "spans": _spans(spans),
                  "diagnostics": [d.to_dict() for d in diags.items], "notes": [d.to_dict() for d in diags.notes]}
        self._write(record)

    def _write(self, record: dict) -> None:
        try:
            cache_files.write(self.path, json.dumps(record, separators=(",", ":")).encode("utf-8"))
        except OSError as exc:  # a read-only checkout: the result is unaffected
            log.info("not writing validate record %s: %s", self.path, exc)

    def _dependencies(self, project: Project | None) -> list[str] | None:
        """Project-relative paths the result depends on; None when it depends on more."""
        files = [PROCESSORS_FILE, TOPICS_FILE, CONFIG_FILE]
        if project is None:
            return files
        for proc in project.processors.values():
            t = proc.transform
            if t.sql:
                files.append(t.sql)
            elif t.python:
                rel = Path(*t.python.split(":", 1)[0].split("."))
                module, package = rel.with_suffix(".py"), rel / "__init__.py"
                if not (self.root / module).is_file() and not (self.root / package).is_file():
                    return None  # found (or not) on sys.path: outside what the record can see
                files += [str(module), str(package)]
        return sorted(set(files))

    def _templates(self) -> list[list[str | None]]:
        """Every file under the project's ``templates/`` with its hash (overrides by name)."""
        base = self.root / TEMPLATES
        out: list[list[str | None]] = []
        for dirpath, dirnames, filenames in os.walk(base):
            dirnames.sort()
            for name in sorted(filenames):
                path = Path(dirpath) / name
                out.append([str(path.relative_to(self.root)), file_hash(path)])
        return out


def _spans(spans: Any) -> dict | None:
    """The record's form of a run's :class:`~framework.sql.checks.Spans`; ``{"start": None}``
    when the SQL was not checked (an edit to a transform then changes nothing); None when
    the checks stopped part-way (an internal error): the next run checks everything."""
    if spans is None:
        return {"start": None}
    if spans.start is None or spans.end is None:
        return None
    return {"start": list(spans.start), "end": list(spans.end), "order": spans.order,
            "render": {k: list(v) for k, v in spans.render.items() if v[0] != v[2] or v[1] != v[3]},
            "report": {k: list(v) for k, v in spans.report.items() if v[0] != v[2] or v[1] != v[3]}}


def _diagnostics(record: dict) -> Diagnostics:
    diags = Diagnostics()
    diags.items = [_diagnostic(d) for d in record["diagnostics"]]
    diags.notes = [_diagnostic(d) for d in record["notes"]]
    return diags


def _diagnostic(d: dict[str, Any]) -> Diagnostic:
    return Diagnostic(d["severity"], d["code"], d["message"], Location(d["file"], d["line"], d["column"]), d["hint"])
