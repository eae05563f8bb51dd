"""Parse every rendered statement with sqlglot during ``pipectl validate``.

Placeholder until the change-detection templates land (issue 3): renders nothing yet.
"""
from __future__ import annotations

from framework.manifest.diagnostics import Diagnostics
from framework.manifest.model import Project


def check_rendered_sql(project: Project, diags: Diagnostics) -> None:
    return None
