"""Where a project's sample-data hooks live, and how they are found.

Why a module of its own: the session (``pipectl sample``/``simulate``/``demo``) and the
entity vocabulary (:mod:`framework.drive.updates`, which reads ``UPDATE_DEFAULTS`` beside
the hooks) both need the lookup; neither may import the other.
"""
from __future__ import annotations

from typing import Any, Callable

from framework.errors import ConfigError
from framework.manifest.model import Project

SAMPLE_MODULES = ("sample_data", "sample_edits")


def sample_hook_modules(project: Project) -> list[str]:
    """Where a project's sample-data hooks may live, in lookup order: the package of its
    pipeline (``pipelines/<project>/sample_data.py``, the NBA example's layout) or the
    project root itself (``sample_data.py`` beside processors.yaml, the IoT example's)."""
    return [f"pipelines.{project.name}.{m}" for m in SAMPLE_MODULES] + list(SAMPLE_MODULES)


def sample_module(project: Project, attr: str) -> Callable[..., Any]:
    """``attr`` from the project's sample-data module, imported from the project folder
    (no PYTHONPATH needed: :func:`framework.manifest.code.import_project_module`)."""
    from framework.manifest.code import import_project_module, module_file

    looked = []
    for mod in sample_hook_modules(project):
        path = module_file(project.root, mod)
        if path is None:
            continue
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
    from framework.manifest.code import import_project_module, module_file

    for mod in sample_hook_modules(project):
        path = module_file(project.root, mod)
        if path is None:
            continue
        value = getattr(import_project_module(project.root, mod), attr, None)
        if value is not None:
            return value, str(path.relative_to(project.root))
    return None, None
