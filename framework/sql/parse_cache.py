"""The SQL checks' parse results, kept across runs in ``.pipectl/cache/sqlcheck-*.bin``.

Parsing is most of validate's time; a statement's result depends only on its text, its
dialect, the schema it is checked against and the sqlglot version, so a repeated validate
re-parses only what changed (framework.sql.checker keys and fills it).
"""
from __future__ import annotations

import hashlib
import io
import json
import logging
import marshal
import os
import sys
import zlib
from pathlib import Path

from framework.manifest.model import Project
from framework.sql import cache_files

log = logging.getLogger(__name__)
# Part of every cache key: bump it when the lineage facts change shape.
LINEAGE_VERSION = 3  # 3: placeholders numbered by first use; results carry the derived dialect's error


class ParseCache:
    """Parse results by statement text, kept across runs in ``.pipectl/cache/``.

    Parsing is most of validate's time; a statement's result depends only on its text, its
    dialect, the schema it is checked against and the sqlglot version (part of the file
    name), so a repeated validate (a pre-commit hook, an editor) re-parses only what
    changed. Compact by design (10,000 transforms' lineage facts were 25 MB of JSON and
    several times that as Python objects): each entry is one ``marshal`` blob, expanded only
    when its processor is reported, and the file is one zlib stream of ``marshal`` records,
    each a batch ``{key: blob}`` (written batch by batch, never all at once). A missing, unreadable, corrupt or unwritable cache only costs speed:
    reads fall back to parsing, writes are skipped (read-only checkouts).
    ``PIPECTL_NO_CACHE=1`` disables it.
    """

    BATCH = 512  # entries per marshal record in the file

    def __init__(self, path: Path | None):
        self.path = path
        self.entries: dict[str, bytes] = {}
        self.dirty = False
        if path is not None and path.is_file():
            try:
                stream = io.BytesIO(zlib.decompress(path.read_bytes()))
                while stream.tell() < len(stream.getbuffer()):
                    batch = marshal.load(stream)
                    if not isinstance(batch, dict):
                        raise TypeError(f"a {type(batch).__name__}, not a batch of entries")
                    self.entries.update(batch)
            except (OSError, ValueError, EOFError, TypeError, zlib.error) as exc:
                log.info("ignoring SQL parse cache %s: %s", path, exc)
                self.entries = {}

    @staticmethod
    def key(dialect: str, sql: str, reads: bool, schema: dict | None = None, derive: str | None = None) -> str:
        """Depends only on the statement and how it is checked: the same every run."""
        shape = json.dumps(schema, sort_keys=True) if schema is not None else ""
        return hashlib.sha1(f"{LINEAGE_VERSION}\0{dialect}\0{int(reads)}\0{derive or ''}\0{shape}\0{sql}".encode()).hexdigest()

    def has(self, key: str) -> bool:
        return key in self.entries

    def get(self, key: str) -> tuple | None:
        blob = self.entries.get(key)
        if blob is None:
            return None
        try:
            hit = marshal.loads(blob)
            error, named, reads, facts, derived = hit
            return error, (tuple(named) if named is not None else None), tuple((int(i), str(c)) for i, c in reads), facts, derived
        except (ValueError, EOFError, TypeError):  # an entry of another format: parse again
            return None

    def put(self, key: str, result: tuple) -> None:
        error, named, reads, facts, derived = result
        self.entries[key] = marshal.dumps((error, list(named) if named is not None else None, [list(r) for r in reads], facts, derived))
        self.dirty = True

    def save(self) -> None:
        if self.path is None or not self.dirty:
            return
        # in batches: one marshal of every entry was a second copy of the cache (tens of MiB
        # at 10,000 processors) at the run's peak
        packer = zlib.compressobj(1)
        parts: list[bytes] = []
        keys = list(self.entries)
        for i in range(0, len(keys), self.BATCH):
            parts.append(packer.compress(marshal.dumps({k: self.entries[k] for k in keys[i:i + self.BATCH]})))
        parts.append(packer.flush())
        try:
            cache_files.write(self.path, b"".join(parts))
        except OSError as exc:  # a read-only checkout: validation results are unaffected
            log.info("not writing SQL parse cache %s: %s", self.path, exc)


def parse_cache_for(project: Project) -> ParseCache:
    if os.environ.get("PIPECTL_NO_CACHE"):
        return ParseCache(None)
    return ParseCache(cache_path(project.root))


def cache_path(project_root: str | Path) -> Path:
    """The project's parse cache file for this sqlglot and Python (``marshal``'s format is
    the interpreter's: the Python version is part of the name too)."""
    import sqlglot

    return cache_files.cache_dir(project_root) / f"sqlcheck-{sqlglot.__version__}-py{sys.version_info[0]}{sys.version_info[1]}.bin"
