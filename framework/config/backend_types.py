"""The backend types ``type:`` in pipectl.yaml may name, as ``"module:Class"`` strings.

Why here and not in :mod:`framework.backends.registry`: the configuration checks the
``type:`` of every role against this table when it reads pipectl.yaml, and configuration
sits below the backends (the registry builds backends *from* a resolved target). The table
holds only strings, so reading it imports no backend module and no cloud SDK; the registry
imports the class when a command first touches it.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class BackendEntry:
    """How to build one backend type: the class path, the pip extra of its SDK, and
    which option keys are file paths (relative to the project root)."""

    target: str
    extra: str | None = None
    path_keys: tuple[str, ...] = ()


REGISTRY: dict[str, dict[str, BackendEntry]] = {
    "warehouse": {
        "duckdb": BackendEntry("framework.backends.duckdb:DuckDBWarehouse", path_keys=("path",)),
        "bigquery": BackendEntry("framework.backends.bigquery:BigQueryWarehouse", extra="gcp"),
    },
    "bus": {
        "local": BackendEntry("framework.backends.localbus:LocalBus", path_keys=("path",)),
        "pubsub": BackendEntry("framework.backends.pubsub:PubSubBus", extra="gcp"),
    },
    "state": {
        "sqlite": BackendEntry("framework.backends.sqlite_state:SQLiteStateStore", path_keys=("path",)),
        "firestore": BackendEntry("framework.backends.firestore:FirestoreStateStore", extra="gcp"),
    },
}


def register_backend(role: str, type_name: str, target: str, extra: str | None = None, path_keys: tuple[str, ...] = ()) -> None:
    """Add (or replace) a backend type, e.g. from a plugin or a test."""
    if role not in REGISTRY:
        raise ValueError(f"unknown backend role {role!r}; use one of {', '.join(REGISTRY)}")
    REGISTRY[role][type_name] = BackendEntry(target, extra, path_keys)


def known_types(role: str) -> list[str]:
    return sorted(REGISTRY[role])


__all__ = ["REGISTRY", "BackendEntry", "register_backend", "known_types"]
