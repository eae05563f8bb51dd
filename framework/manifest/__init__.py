"""Manifests: YAML with locations -> JSON Schema shape check -> resolved frozen model.

The lowest layer of pipectl (it imports nothing of pipectl but :mod:`framework.errors`):
loading a project *for execution*, with every graph rule checked, is
:func:`framework.project.load`, one layer up.
"""
from __future__ import annotations

from pathlib import Path

from framework.errors import ManifestError
from framework.manifest.diagnostics import Diagnostic, Diagnostics
from framework.manifest.model import Project

PROCESSORS_FILE = "processors.yaml"
TOPICS_FILE = "topics.yaml"


def load_project(root: str | Path = ".", diags: Diagnostics | None = None) -> tuple[Project | None, Diagnostics]:
    """Load and resolve the project at ``root``, collecting every problem.

    Returns ``(None, diags)`` when the shape is too broken to resolve (syntax or schema
    errors); otherwise a Project, possibly alongside diagnostics the caller must inspect.
    """
    from framework.manifest.loader import check_entity_references, check_schema, load_yaml
    from framework.manifest.resolver import resolve

    diags = diags if diags is not None else Diagnostics()
    root = Path(root).resolve()
    rel = _display(root)
    pf = load_yaml(root / PROCESSORS_FILE, rel(PROCESSORS_FILE), diags)
    tf = load_yaml(root / TOPICS_FILE, rel(TOPICS_FILE), diags)
    shape_ok = pf is not None and tf is not None
    shape_ok = (pf is not None and check_schema(pf, "processors", diags)) & (tf is not None and check_schema(tf, "topics", diags)) and shape_ok
    if not shape_ok:
        if pf is not None:  # too broken to resolve: still name unknown entity kinds, located
            check_entity_references(pf, diags)
        return None, diags
    return resolve(root, pf, tf, diags), diags


def _display(root: Path):
    cwd = Path.cwd()

    def rel(name: str) -> str:
        path = root / name
        try:
            return str(path.relative_to(cwd))
        except ValueError:
            return str(path)

    return rel


__all__ = ["load_project", "Project", "Diagnostic", "Diagnostics", "ManifestError"]
