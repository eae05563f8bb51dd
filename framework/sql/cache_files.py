"""Files pipectl keeps in a project's ``.pipectl/cache/``: compiled templates, SQL parse
results, the last validate record.

One place so every writer keeps ``.pipectl/`` out of git the same way and replaces a file
whole (a reader never sees half a cache after a crash or beside a concurrent run). It sits
in ``sql`` because the lowest writers (the template environment, the SQL checks) live
here; ``framework.config.paths`` owns the rest of the state folder.
"""
from __future__ import annotations

import os
import threading
from pathlib import Path

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
