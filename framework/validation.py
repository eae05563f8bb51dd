"""Library entry point behind `pipectl validate`: load, resolve, run every rule."""
from __future__ import annotations

from pathlib import Path

from framework.manifest import load_project
from framework.manifest.diagnostics import Diagnostics


def validate(root: str | Path = ".", check_sql: bool = True, check_files: bool = True) -> Diagnostics:
    """Collect every diagnostic for the project at ``root`` (never raises on bad manifests)."""
    project, diags = load_project(root)
    if project is not None:
        from framework.graph.rules import validate_project

        validate_project(project, diags, check_sql=check_sql and not diags.errors, check_files=check_files)
    return diags
