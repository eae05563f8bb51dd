"""The example projects pipectl ships, and where an installation finds them.

An example is a runnable project (manifests, SQL, Python transforms, sample-data hook) whose
source lives in the repository: the NBA props pipeline is the repository root itself and
the IoT sensors pipeline is ``pipelines/iot_sensors/``. Neither is a Python package of
pipectl (``pipelines`` must never be installed into site-packages: it would shadow a user's
own ``pipelines/`` folder), so the wheel build (``setup.py``) copies each example's files,
as listed here, into ``framework/examples/<name>/`` as package data.

This module is the one list of those files. It imports nothing but the standard library,
because ``setup.py`` loads it by path while building the wheel, before pipectl's
dependencies exist.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

PACKAGE_FOLDER = "examples"  # framework/examples/<name>/ inside an installed wheel
_SKIP_DIRS = frozenset({"__pycache__", ".pipectl", ".pytest_cache"})
_SKIP_SUFFIXES = (".pyc", ".duckdb", ".wal", ".sqlite", ".sqlite-journal", ".sqlite-wal", ".sqlite-shm")


@dataclass(frozen=True)
class Example:
    """``source`` is the example's project folder relative to the repository root;
    ``include`` lists the files and folders (relative to ``source``) that make it runnable."""

    name: str
    source: str
    include: tuple[str, ...]
    description: str


EXAMPLES: dict[str, Example] = {
    "nba_props": Example(
        "nba_props", ".",
        ("processors.yaml", "topics.yaml", "pipectl.yaml", "pipelines/__init__.py", "pipelines/nba_props", "templates"),
        "NBA player props: six phases, ~450 players and 30 teams per game day (the repository root)"),
    "iot_sensors": Example(
        "iot_sensors", "pipelines/iot_sensors", (".",),
        "building sensors: readings cleaned, rolled up per sensor and site, anomalies flagged"),
}


def is_project_file(rel: Path) -> bool:
    """False for caches and local state (``__pycache__/``, ``.pipectl/``, ``*.pyc``, database
    files): an installed package holds byte-code next to its data, a checkout holds state."""
    return not (_SKIP_DIRS.intersection(rel.parts[:-1]) or rel.name.endswith(_SKIP_SUFFIXES))


def example_files(source_root: Path, example: Example) -> Iterator[tuple[Path, str]]:
    """``(file, path relative to the example)`` for every file of ``example`` found under
    ``source_root`` (the example's own folder), sorted; caches and local state skipped."""
    seen: set[str] = set()
    for entry in example.include:
        start = source_root / entry
        if start.is_file():
            candidates = [start]
        elif start.is_dir():
            candidates = sorted(p for p in start.rglob("*") if p.is_file())
        else:
            continue  # optional entries (pipectl.yaml) may be absent
        for path in candidates:
            rel = path.relative_to(source_root)
            if not is_project_file(rel):
                continue
            if rel.as_posix() not in seen:
                seen.add(rel.as_posix())
                yield path, rel.as_posix()
