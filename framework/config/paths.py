"""Default file locations of the embedded backends, under ``<project>/.pipectl/``.

Owned by the configuration (the embedded target's defaults are these paths). Why one
module: the CLI, the registry's embedded ``local`` target and tests must agree on
where the warehouse, bus and ledger live, or two commands would silently use two files.
The folder gets a ``.gitignore`` of ``*`` so local state is never committed by accident.
"""
from __future__ import annotations

from pathlib import Path

STATE_DIR_NAME = ".pipectl"
WAREHOUSE_FILE = "warehouse.duckdb"
BUS_FILE = "bus.sqlite"
LEDGER_FILE = "ledger.sqlite"


def state_dir(project_root: str | Path) -> Path:
    """``<project>/.pipectl``: where embedded backends keep their files."""
    return Path(project_root) / STATE_DIR_NAME


def ensure_state_dir(project_root: str | Path) -> Path:
    """Create ``.pipectl/`` (with a ``.gitignore`` of ``*``) and return it."""
    folder = state_dir(project_root)
    folder.mkdir(parents=True, exist_ok=True)
    ignore = folder / ".gitignore"
    if not ignore.exists():
        ignore.write_text("# local pipectl state (warehouse, bus, ledger): never commit\n*\n", encoding="utf-8")
    return folder


def warehouse_path(project_root: str | Path) -> Path:
    return state_dir(project_root) / WAREHOUSE_FILE


def bus_path(project_root: str | Path) -> Path:
    return state_dir(project_root) / BUS_FILE


def ledger_path(project_root: str | Path) -> Path:
    return state_dir(project_root) / LEDGER_FILE


def resolve_path(project_root: str | Path, value: str | Path) -> Path:
    """A configured path: absolute stays, relative is taken from the project root (never
    from the current directory, so `pipectl -p other/project` finds the same files)."""
    path = Path(value).expanduser()
    return path if path.is_absolute() else Path(project_root) / path


__all__ = ["STATE_DIR_NAME", "state_dir", "ensure_state_dir", "warehouse_path", "bus_path", "ledger_path", "resolve_path"]
