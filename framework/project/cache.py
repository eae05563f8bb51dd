"""The project the last command loaded, kept in ``.pipectl/cache/project.bin`` for the next one.

Why: every executing command (``run``, ``simulate update``, the worker, ``status``) starts by
loading the manifests: parsing the YAML with locations, the JSON Schema check, resolving,
every graph rule. For the example that is a tenth of a one-entity update's whole process, and
it answers the same thing as last time while nothing it read has changed. A hit reads one
file and unpickles the resolved model: no YAML parser imported, no rule run.

What the record holds:

* a header (JSON): the key and the files the answer depends on. The key: the format, the
  Python version, the project folder and the working directory (locations name files
  relative to it), and pipectl's manifest code (every file of ``framework/manifest``,
  ``framework/graph``, ``framework/project``, the JSON Schemas and ``errors.py``, by path,
  modification time and size: what Python's own bytecode cache trusts for source files) and
  the YAML and JSON Schema libraries (the same for their module files). The files: both
  manifests by content hash (a rewrite in the same clock tick must still miss), and whether
  each transform file exists (the ``missing-transform`` rule);
* the resolved :class:`~framework.manifest.model.Project`, pickled, with every location
  resolved to its line and column (a hit never re-parses the YAML to print one).

A project whose answer depends on something the record cannot see (a Python transform
found on ``sys.path`` rather than under the project) is not recorded. Only a load without
errors is recorded: a broken project is loaded (and reported) in full every time.

A project found here or recorded here carries the digest of its recorded bytes, so the
statements rendered from it can be reused too (:mod:`framework.sql.rendered`).

A record that cannot be trusted is never used: the header and pickle are covered by a
checksum, so a truncated or overwritten file is ignored with a warning and rebuilt; a key
or file that differs is a plain miss. The folder is the project's own state folder (like
the template and parse caches beside it): whoever can write it can edit the project's
Python transforms too. ``PIPECTL_NO_CACHE=1`` turns the cache off; a read-only checkout
only loses the speed.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import pickle
import sys
from pathlib import Path
from typing import Any

from framework.manifest import PROCESSORS_FILE, TOPICS_FILE
from framework.manifest.model import Project
from framework.sql import cache_files, rendered

log = logging.getLogger(__name__)

FORMAT = 1
FILE = "project.bin"
MAGIC = b"pipectl-project\n"
_SUM = 16  # bytes of the checksum after MAGIC
_CODE_DIRS = ("manifest", "graph", "project", "schemas")
_CODE_FILES = ("errors.py", "sql/context.py")  # context: which input reads which mapping (graph edges)
_LIBRARIES = ("yaml", "jsonschema_rs", "jsonschema")


class CacheError(ValueError):
    """The record is damaged (checksum, header or pickle): warn, ignore, rebuild."""


def enabled() -> bool:
    return not os.environ.get("PIPECTL_NO_CACHE")


def _code_state() -> list[Any]:
    """pipectl's manifest code and the libraries it parses with (path, mtime, size)."""
    base = Path(__file__).resolve().parent.parent
    out: list[Any] = [cache_files.stamp(str(base / name)) for name in _CODE_FILES]
    for folder in _CODE_DIRS:
        with os.scandir(base / folder) as entries:
            out += sorted(cache_files.stamp(e.path) for e in entries if e.name.endswith((".py", ".json")))
    out += [[lib, cache_files.module_stamp(lib)] for lib in _LIBRARIES]
    return out


def _state(root: Path, kind: str, rel: str) -> Any:
    path = root / rel
    return cache_files.file_hash(path) if kind == "hash" else path.is_file()


class ProjectCache:
    """The record of one project folder: look it up, or store a freshly loaded project."""

    def __init__(self, root: Path):
        self.root = root
        self.path = cache_files.cache_dir(root) / FILE
        self._key: str | None = None

    @property
    def key(self) -> str:
        if self._key is None:
            self._key = cache_files.digest(json.dumps([FORMAT, sys.version, str(self.root), os.getcwd(), _code_state()]).encode())
        return self._key

    # ---------------------------------------------------------------- lookup
    def lookup(self) -> Project | None:
        """The recorded project, or None on a miss or a damaged record (warned)."""
        try:
            data = self.path.read_bytes()
        except OSError:
            return None  # no record yet (or unreadable: loading in full is always right)
        try:
            header, payload = _split(data)
            if header.get("key") != self.key:
                return None
            for kind, rel, state in header["files"]:
                if _state(self.root, kind, rel) != state:
                    return None
            project = pickle.loads(payload)
            if not isinstance(project, Project) or Path(project.root) != self.root:
                raise CacheError("the record holds no project of this folder")
            rendered.register(project, cache_files.digest(payload))  # statements rendered from this very model
        except (CacheError, KeyError, TypeError, ValueError, pickle.UnpicklingError, EOFError, AttributeError,
                ImportError, IndexError) as exc:
            log.warning("ignoring the damaged project cache %s (%s): loading the manifests in full and rewriting it",
                        self.path, exc)
            return None
        return project

    # ---------------------------------------------------------------- store
    def manifests(self) -> list[list[Any]]:
        """Both manifests' content hashes, taken *before* loading them: a file edited while
        it is being loaded then only makes the next lookup miss, never hit stale."""
        return [["hash", name, _state(self.root, "hash", name)] for name in (PROCESSORS_FILE, TOPICS_FILE)]

    def store(self, project: Project, manifests: list[list[Any]]) -> None:
        """Record ``project`` (loaded without errors from ``manifests``) for the next command."""
        files = self._transforms(project)
        if files is None:
            return
        try:
            payload = pickle.dumps(project, protocol=pickle.HIGHEST_PROTOCOL)
        except (pickle.PicklingError, TypeError, AttributeError) as exc:  # a model field that cannot be kept
            log.info("not caching the project of %s: %s", self.root, exc)
            return
        rendered.register(project, cache_files.digest(payload))
        header = json.dumps({"key": self.key, "files": manifests + files}, separators=(",", ":")).encode("utf-8")
        body = len(header).to_bytes(4, "big") + header + payload
        try:
            cache_files.write(self.path, MAGIC + hashlib.blake2b(body, digest_size=_SUM).digest() + body)
        except OSError as exc:  # a read-only checkout: the load is unaffected
            log.info("not writing the project cache of %s: %s", self.root, exc)

    def _transforms(self, project: Project) -> list[list[Any]] | None:
        """Whether each transform file exists (``missing-transform``); None when a Python
        transform is found on ``sys.path``, outside what the record can see."""
        deps: list[list[Any]] = []
        for proc in project.processors.values():
            t = proc.transform
            if t.sql:
                deps.append(["exists", t.sql])
            elif t.python:
                rel = Path(*t.python.split(":", 1)[0].split("."))
                module, package = str(rel.with_suffix(".py")), str(rel / "__init__.py")
                if not (self.root / module).is_file() and not (self.root / package).is_file():
                    return None
                deps += [["exists", module], ["exists", package]]
        return [[kind, rel, _state(self.root, kind, rel)] for kind, rel in deps]


def _split(data: bytes) -> tuple[dict[str, Any], bytes]:
    if not data.startswith(MAGIC) or len(data) < len(MAGIC) + _SUM + 4:
        raise CacheError("not a pipectl project record")
    checksum, body = data[len(MAGIC):len(MAGIC) + _SUM], data[len(MAGIC) + _SUM:]
    if hashlib.blake2b(body, digest_size=_SUM).digest() != checksum:
        raise CacheError("checksum mismatch: the file was truncated or changed")
    size = int.from_bytes(body[:4], "big")
    header = json.loads(body[4:4 + size].decode("utf-8"))
    if not isinstance(header, dict):
        raise CacheError("malformed header")
    return header, body[4 + size:]
