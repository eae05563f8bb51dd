"""Where a project's sample-data hooks live, and how they are found.

Why a module of its own: the session (``pipectl sample``/``simulate``/``demo``) and the
entity vocabulary (:mod:`framework.drive.updates`, which reads ``UPDATE_DEFAULTS`` beside
the hooks) both need the lookup; neither may import the other.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Callable

from framework.errors import ConfigError
from framework.manifest.model import Project

SAMPLE_MODULES = ("sample_data", "sample_edits")


def sample_hook_modules(project: Project) -> list[str]:
    """Where a project's sample-data hooks may live, in lookup order: the package of its
    pipeline (``pipelines/<project>/sample_data.py``, the NBA example's layout) or the
    project root itself (``sample_data.py`` beside processors.yaml, the IoT example's)."""
    return [f"pipelines.{project.name}.{m}" for m in SAMPLE_MODULES] + list(SAMPLE_MODULES)


def _defining_first(project: Project, attr: str, definition: str) -> list[tuple[str, Path]]:
    """The project's hook modules, those whose source defines ``attr`` first (lookup order
    kept otherwise). The NBA example's sample_data re-exports apply_update from sample_edits:
    importing it (and the league simulator it loads) only to find the same function cost a
    one-entity update more than its pipeline did."""
    from framework.manifest.code import module_file

    found = [(mod, path) for mod in sample_hook_modules(project) if (path := module_file(project.root, mod)) is not None]
    pattern = re.compile(definition, re.M)
    return sorted(found, key=lambda item: not pattern.search(item[1].read_text(encoding="utf-8", errors="replace")))


def sample_module(project: Project, attr: str) -> Callable[..., Any]:
    """``attr`` from the project's sample-data module, imported from the project folder
    (no PYTHONPATH needed: :func:`framework.manifest.code.import_project_module`)."""
    from framework.manifest.code import import_project_module

    looked = []
    for mod, path in _defining_first(project, attr, rf"^\s*def {re.escape(attr)}\s*\("):
        looked.append(str(path.relative_to(project.root)))
        fn = getattr(import_project_module(project.root, mod), attr, None)
        if callable(fn):
            return fn
    where = f"looked in {', '.join(looked)}" if looked else "the project has no sample_data.py"
    raise ConfigError(f"project '{project.name}' has no sample-data hook '{attr}' ({where})",
                      hint=f"add {attr}() to pipelines/{project.name}/sample_data.py or to sample_data.py beside "
                           "processors.yaml (see docs/runtime.md#sample-data-hooks)")


def sample_attr(project: Project, attr: str) -> Any:
    """A non-callable attribute (``UPDATE_DEFAULTS``) of the first hook module that has it,
    with that module's file relative to the project; ``(None, None)`` when none has it."""
    from framework.manifest.code import import_project_module

    for mod, path in _defining_first(project, attr, rf"^{re.escape(attr)}\s*[:=]"):
        value = getattr(import_project_module(project.root, mod), attr, None)
        if value is not None:
            return value, str(path.relative_to(project.root))
    return None, None
