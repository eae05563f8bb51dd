"""`pipectl validate --dry-run`: ask the warehouse to validate every rendered statement.

Why: parse checks (sqlglot) cannot see the real tables; a BigQuery dry run resolves every
table and column against the live schemas and reports the bytes a full-batch run would
scan, at no cost, before anything is deployed. Only warehouses with a ``dry_run(sql,
params) -> bytes`` capability can do this (BigQuery); others are refused with the fix.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from framework.errors import ConfigError, Location, PipectlError

SAMPLE_PARTITION = "2000-01-01"  # any value of the partition type: a dry run reads no data


@dataclass(frozen=True)
class DryRunResult:
    """One statement: bytes it would scan, or why the warehouse rejected it."""

    processor: str
    kind: str  # transform | detect
    bytes_processed: int | None
    error: str | None = None
    location: Location | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


def _statements(project: Any, proc: Any, dialect: str) -> list[tuple[str, Any]]:
    from framework.sql.render import render_statement

    out = []
    if proc.transform is not None and getattr(proc.transform, "sql", None):
        out.append(("transform", render_statement(project, proc, "transform", dialect, full_batch=True)))
    if proc.inputs and proc.entity and proc.output is not None:
        out.append(("detect", render_statement(project, proc, "detect", dialect)))
    return out


def dry_run_project(project: Any, warehouse: Any) -> list[DryRunResult]:
    """Dry-run the full-batch transform and the change detection of every enabled processor."""
    from framework.sql.render import query_params

    if not callable(getattr(warehouse, "dry_run", None)):
        raise ConfigError(f"the {getattr(warehouse, 'dialect', '?')} warehouse cannot dry-run statements",
                          hint="run `pipectl --target gcp validate --dry-run` (BigQuery)")
    results = []
    for proc in project.processors.values():
        if not getattr(proc, "enabled", True):
            continue
        location = getattr(proc.transform, "location", None) or proc.location
        try:
            statements = _statements(project, proc, warehouse.dialect)
        except PipectlError as exc:
            results.append(DryRunResult(proc.name, "render", None, exc.render(), location))
            continue
        for kind, rendered in statements:
            try:
                params = query_params(project, rendered.params, partition=SAMPLE_PARTITION, entity_ids=[],
                                      processor=proc.name, run_id="dry-run")
                results.append(DryRunResult(proc.name, kind, warehouse.dry_run(rendered.sql, params), None, location))
            except PipectlError as exc:
                results.append(DryRunResult(proc.name, kind, None, exc.render(), location))
    return results


def dry_run_target(project_root: str | Path, target: str | None) -> list[DryRunResult]:
    """Load the project and dry-run it on the target's warehouse (closed afterwards)."""
    from framework.backends.registry import open_backends, target_project

    with open_backends(project_root, target) as backends:
        return dry_run_project(target_project(project_root, backends.target), backends.warehouse)
