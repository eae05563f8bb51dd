"""A project as the executing commands need it: manifests loaded, resolved and checked by
every graph rule (:mod:`framework.graph.rules`).

Why not in :mod:`framework.manifest`: the rules sit above the manifest model (they read the
graph and the SQL), and the manifest layer imports nothing of pipectl above it. ``pipectl
validate`` collects the same diagnostics without raising (:mod:`framework.validation`).

A project loaded without errors is kept in ``.pipectl/cache/project.bin`` and reused by the
next command while nothing it was loaded from has changed (:mod:`framework.project.cache`):
an executing command then imports neither the YAML parser nor the graph rules.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable

from framework.errors import ManifestError
from framework.manifest.model import Project


# projects a running command already loaded, by resolved root: see share()
_shared: dict[str, Project] = {}


def _key(root: str | Path) -> str:
    return str(Path(root).resolve())


def share(project: Project) -> Callable[[], None]:
    """Let every :func:`load` of ``project``'s root reuse it until the returned undo is
    called. A command loads its project once (the CLI shares it for the command's length):
    the session, the sample-data hooks (which load the manifest themselves when called
    without one) and the runner then read the same object instead of parsing the YAML again."""
    key = _key(project.root)
    _shared[key] = project
    return lambda: _shared.pop(key, None) and None


def load(root: str | Path = ".") -> Project:
    """Load a project for execution: any error-level diagnostic (including graph rules) raises.
    Within a command that shared its project (:func:`share`), the shared one is returned."""
    shared = _shared.get(_key(root)) if _shared else None
    if shared is not None:
        return shared
    from framework.project.cache import ProjectCache, enabled

    record = ProjectCache(Path(root).resolve()) if enabled() else None
    found = record.lookup() if record is not None else None
    if found is not None:
        return found
    manifests = record.manifests() if record is not None else []
    project = _load(root)
    if record is not None:
        record.store(project, manifests)
    return project


def _load(root: str | Path) -> Project:
    from framework.graph.rules import validate_project  # lazy: a cached project needs no rule
    from framework.manifest import load_project

    project, diags = load_project(root)
    if project is not None:
        validate_project(project, diags, check_sql=False)
    if diags.errors:
        raise ManifestError(diags.sorted())
    assert project is not None
    return project


__all__ = ["load", "share", "Project"]
