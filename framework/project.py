"""A project as the executing commands need it: manifests loaded, resolved and checked by
every graph rule (:mod:`framework.graph.rules`).

Why not in :mod:`framework.manifest`: the rules sit above the manifest model (they read the
graph and the SQL), and the manifest layer imports nothing of pipectl above it. ``pipectl
validate`` collects the same diagnostics without raising (:mod:`framework.validation`).
"""
from __future__ import annotations

from pathlib import Path

from framework.errors import ManifestError
from framework.graph.rules import validate_project
from framework.manifest import load_project
from framework.manifest.model import Project


def load(root: str | Path = ".") -> Project:
    """Load a project for execution: any error-level diagnostic (including graph rules) raises."""
    project, diags = load_project(root)
    if project is not None:
        validate_project(project, diags, check_sql=False)
    if diags.errors:
        raise ManifestError(diags.sorted())
    assert project is not None
    return project


__all__ = ["load", "Project"]
