"""Typed query parameters: the value type every warehouse takes and every renderer produces.

Why in the SQL layer (not with the backend protocols): rendering builds parameters and the
backends bind them, and the SQL layer may not import a backend. Values go into SQL only as
these parameters, never by string formatting.
"""
from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass
from typing import Any

from framework.errors import ConfigError
from framework.manifest.model import Project


@dataclass(frozen=True)
class QueryParam:
    """A typed query parameter. ``type`` is a BigQuery type name (STRING, INT64, DATE, ...);
    ``array`` marks ARRAY<type> (used for ``UNNEST(@entity_ids)``)."""

    name: str
    value: Any
    type: str = "STRING"
    array: bool = False


def coerce_value(value: Any, type_name: str) -> Any:
    """``value`` as the Python type a parameter of ``type_name`` binds (an ISO string to a
    date for DATE, a string to an int for INT64, a date to its ISO text for STRING)."""
    if value is None:
        return None
    if type_name == "DATE" and isinstance(value, str):
        return _dt.date.fromisoformat(value)
    if type_name == "INT64" and not isinstance(value, int):
        return int(value)
    if type_name == "STRING" and not isinstance(value, str):
        return value.isoformat() if hasattr(value, "isoformat") else str(value)
    return value


def partition_param(project: Project, value: Any) -> QueryParam:
    """The partition value as a typed parameter named after the partition column."""
    return QueryParam(project.partition_column, coerce_partition(project, value), project.partition_type or "DATE")


def coerce_partition(project: Project, value: Any) -> Any:
    if (project.partition_type or "DATE") == "DATE" and isinstance(value, str):
        try:
            return _dt.date.fromisoformat(value)
        except ValueError:
            raise ConfigError(f"partition {value!r} is not a date (YYYY-MM-DD) for column {project.partition_column}") from None
    if project.partition_type == "INT64" and isinstance(value, str):
        return int(value)
    return value


__all__ = ["QueryParam", "coerce_value", "partition_param", "coerce_partition"]
