"""Importing a project's own Python code (transforms, sample-data hooks) without PYTHONPATH.

A project's Python lives beside its manifests: ``pipelines/<project>/export.py`` imported
as ``pipelines.<project>.export``, or a ``sample_data.py`` at the project root. pipectl puts
the project folder first on ``sys.path`` when it loads such code, so ``pipectl run`` works
from any directory with nothing exported. Module names are resolved against the project
folder first: if a module of the same top-level name was already imported from somewhere
else (another project in the same process, or an installed package shadowing the
project's own ``pipelines/``), it is dropped from ``sys.modules`` so the project's own copy
is the one that runs. pipectl never installs a top-level ``pipelines`` package, so a
user's ``pipelines/`` folder is never shadowed by pipectl itself.
"""
from __future__ import annotations

import importlib
import sys
from pathlib import Path
from types import ModuleType

from framework.errors import ConfigError

_PROTECTED = frozenset({"framework"})  # pipectl itself: a project may not replace it


def module_file(root: Path | str, module: str) -> Path | None:
    """The file under ``root`` that ``module`` would import from, or None."""
    rel = Path(*module.split("."))
    base = Path(root)
    for candidate in (base / rel.with_suffix(".py"), base / rel / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def put_on_path(root: Path | str) -> str:
    """Put the project folder first on ``sys.path`` (moved to the front if already there)."""
    entry = str(Path(root).resolve())
    if sys.path[:1] != [entry]:
        if entry in sys.path:
            sys.path.remove(entry)
        sys.path.insert(0, entry)
    return entry


def import_project_module(root: Path | str, module: str) -> ModuleType:
    """Import ``module`` from the project folder ``root`` (see the module docstring)."""
    entry = put_on_path(root)
    top = module.split(".", 1)[0]
    if top in _PROTECTED and module_file(entry, top) is not None:
        raise ConfigError(f"{entry}/{top}: a project folder may not hold a top-level '{top}' package "
                          "(it would replace pipectl's own code)", hint=f"rename the folder '{top}'")
    if module_file(entry, top) is not None or (Path(entry) / top).is_dir():
        _forget_foreign(entry, top)
    return importlib.import_module(module)


def _forget_foreign(entry: str, top: str) -> None:
    """Drop ``top`` and its submodules from sys.modules when they were loaded from outside
    the project folder, so the next import finds the project's own files."""
    loaded = sys.modules.get(top)
    if loaded is None:
        return
    places = [getattr(loaded, "__file__", None), *list(getattr(loaded, "__path__", []) or [])]
    if any(p and Path(p).resolve().is_relative_to(entry) for p in places):
        return
    for name in [n for n in sys.modules if n == top or n.startswith(top + ".")]:
        del sys.modules[name]
    importlib.invalidate_caches()
