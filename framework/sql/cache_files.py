"""Files pipectl keeps in a project's ``.pipectl/cache/``: compiled templates, SQL parse
results, the last validate record, the loaded project, rendered statements; and what their
keys are made of (content hashes of the project's files, stamps of pipectl's code and
libraries), so every record is keyed the same way.

One place so every writer keeps ``.pipectl/`` out of git the same way and replaces a file
whole (a reader never sees half a cache after a crash or beside a concurrent run). It sits
in ``sql`` because the lowest writers (the template environment, the SQL checks) live
here; ``framework.config.paths`` owns the rest of the state folder.
"""
from __future__ import annotations

import hashlib
import os
import threading
from importlib.util import find_spec
from pathlib import Path
from typing import Any

STATE_DIR = ".pipectl"
CACHE_DIR = "cache"


def cache_dir(project_root: str | Path) -> Path:
    """``<project>/.pipectl/cache``."""
    return Path(project_root) / STATE_DIR / CACHE_DIR


def prepare(folder: Path) -> None:
    """Create ``folder`` (inside ``.pipectl/cache/``) and the state folder's ``.gitignore``.
    Raises OSError on a read-only checkout: callers decide that a cache is only speed."""
    folder.mkdir(parents=True, exist_ok=True)
    state = next((p for p in (folder, *folder.parents) if p.name == STATE_DIR), None)
    if state is not None:
        ignore = state / ".gitignore"
        if not ignore.exists():
            ignore.write_text("*\n", encoding="utf-8")


def write(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data`` atomically (write beside it, then rename). The file
    written beside it is this thread's own: two commands writing the same cache at once
    each rename a whole file, the last one wins, neither renames the other's half."""
    prepare(path.parent)
    tmp = path.with_name(f"{path.name}.{os.getpid()}-{threading.get_ident()}.tmp")
    try:
        tmp.write_bytes(data)
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)


# ------------------------------------------------------------------ what a cache is keyed by
def digest(data: bytes) -> str:
    """The content hash every cache record keys files by (BLAKE2b, 128 bits, hex)."""
    return hashlib.blake2b(data, digest_size=16).hexdigest()


def file_hash(path: Path) -> str | None:
    """``digest`` of a file's bytes; None when it does not exist, ``"dir"`` for a folder
    (a key must differ between the three, never raise)."""
    try:
        return digest(path.read_bytes())
    except FileNotFoundError:
        return None
    except IsADirectoryError:
        return "dir"


def stamp(path: str | None) -> list[Any] | None:
    """``[path, mtime_ns, size]`` of a file, None when absent: what Python's own bytecode
    cache trusts for source files, so pipectl's code and libraries are keyed without
    reading them."""
    try:
        st = os.stat(path) if path else None
    except OSError:
        return None
    return [path, st.st_mtime_ns, st.st_size] if st else None


def module_stamp(name: str) -> list[Any] | None:
    """``stamp`` of an installed module's file, without importing it (None: not installed)."""
    try:
        spec = find_spec(name)
    except (ImportError, ValueError):
        return None
    return stamp(spec.origin if spec is not None else None)
