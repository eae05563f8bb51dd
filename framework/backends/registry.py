"""Backend registry: ``type:`` in pipectl.yaml -> ``"module:Class"``, imported lazily.

The table itself lives in :mod:`framework.config.backend_types` (the configuration checks
``type:`` against it and sits below the backends); it is re-exported here.

Why strings: choosing the embedded target must never import a cloud SDK (slow, maybe not
installed), and the core must not depend on any backend module. A backend is imported only
when a command first touches it; a missing SDK raises :class:`MissingDependencyError` naming
the extra to install (``framework.errors.install_hint``: pipectl's own source, never the PyPI name).

Constructors receive the backend section's keys as keyword arguments (``path`` resolved
against the project root for embedded backends), plus the target-level ``project`` and
``location`` when the constructor accepts them, and ``project_root`` (so the project's
template overrides apply) when it accepts that. An unknown key is a located ConfigError.
"""
from __future__ import annotations

import importlib
import inspect
from pathlib import Path
from typing import Any

from framework.config import Target, resolve_target
from framework.config.backend_types import REGISTRY, BackendEntry, known_types, register_backend
from framework.config.paths import STATE_DIR_NAME, ensure_state_dir, resolve_path
from framework.errors import BackendError, ConfigError, MissingDependencyError


def load_class(role: str, type_name: str) -> type:
    """Import the class registered for ``role``/``type_name``."""
    entry = REGISTRY[role].get(type_name)
    if entry is None:
        raise ConfigError(f"unknown {role} type '{type_name}'", hint=f"use one of: {', '.join(known_types(role))}")
    module_name, _, attr = entry.target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        missing = exc.name or ""
        if missing == module_name or module_name.startswith(missing + "."):
            raise BackendError(f"{role} type '{type_name}' is registered as {entry.target}, but {module_name} is not part of this installation",
                               hint="upgrade pipectl or pick another type in pipectl.yaml") from exc
        raise MissingDependencyError(missing, entry.extra or "all") from exc
    try:
        return getattr(module, attr)
    except AttributeError as exc:
        raise BackendError(f"{module_name} has no class {attr} (registered for {role} type '{type_name}')") from exc


def build_backend(spec: Any, project_root: str | Path, settings: dict[str, Any] | None = None) -> Any:
    """Instantiate one backend from a :class:`framework.config.BackendSpec`."""
    entry = REGISTRY[spec.role].get(spec.type)
    cls = load_class(spec.role, spec.type)
    kwargs: dict[str, Any] = dict(spec.options)
    for key in entry.path_keys if entry else ():
        if key in kwargs:
            path = resolve_path(project_root, kwargs[key])
            if STATE_DIR_NAME in Path(str(kwargs[key])).parts:
                ensure_state_dir(project_root)
            kwargs[key] = path
    params = inspect.signature(cls).parameters
    takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    for key, value in (settings or {}).items():
        if key in NAME_PREFIXES:  # applied to the model and the state store, never a backend option
            continue
        if key not in kwargs and (takes_any or key in params):
            kwargs[key] = value
    if "project_root" in params and "project_root" not in kwargs:
        kwargs["project_root"] = Path(project_root)  # the project's template overrides (ddl.sql.j2, ...)
    unknown = [k for k in kwargs if not takes_any and k not in params]
    if unknown:
        accepted = [p for p in params if params[p].kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)]
        raise ConfigError(f"{spec.role} type '{spec.type}' does not accept option(s) {', '.join(unknown)}",
                          location=spec.location, hint=f"accepted: {', '.join(accepted) or 'none'}")
    try:
        return cls(**kwargs)
    except ModuleNotFoundError as exc:  # SDKs imported inside the constructor
        if entry and entry.extra and exc.name and not exc.name.startswith("framework"):
            raise MissingDependencyError(exc.name, entry.extra) from exc
        raise


NAME_PREFIXES = ("dataset_prefix", "topic_prefix", "lineage")  # target settings that are no backend option


class Backends:
    """The three backends of one target, each opened on first use and closed together.

    Lazy so that a command needing only the bus never opens the warehouse (or imports its
    SDK). Use as a context manager or call :meth:`close`.
    """

    def __init__(self, project_root: str | Path, target: Any):
        self.project_root = Path(project_root)
        self.target = target
        self._open: dict[str, Any] = {}

    def _get(self, role: str) -> Any:
        if role not in self._open:
            backend = build_backend(self.target.spec(role), self.project_root, dict(self.target.settings))
            prefix = getattr(self.target, "dataset_prefix", "")
            if role == "state" and prefix:  # dev's ledger and history apart from prod's (prefixed_state.py)
                from framework.backends.prefixed_state import PrefixedStateStore

                backend = PrefixedStateStore(backend, prefix)
            self._open[role] = backend
        return self._open[role]

    @property
    def warehouse(self) -> Any:
        return self._get("warehouse")

    @property
    def bus(self) -> Any:
        return self._get("bus")

    @property
    def state(self) -> Any:
        return self._get("state")

    def close(self) -> None:
        """Close every opened backend; the first failure is raised after trying them all."""
        failures: list[BaseException] = []
        for role, backend in list(self._open.items()):
            try:
                backend.close()
            except Exception as exc:  # noqa: BLE001 - collected and re-raised below
                failures.append(exc)
            self._open.pop(role, None)
        if failures:
            raise failures[0]

    def __enter__(self) -> "Backends":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_backends(project_root: str | Path, target_name: str | None = None) -> Backends:
    """Backends of ``target_name`` (default: pipectl.yaml's default, else embedded local)."""
    return Backends(project_root, resolve_target(project_root, target_name))


def target_project(project_root: str | Path, target: str | Target | None = None, project: Any = None) -> Any:
    """The project as ``target`` sees it: loaded (unless given) and renamed by the target's
    ``dataset_prefix``/``topic_prefix`` (:meth:`framework.config.Target.apply`).

    The one way a command gets the project of a target it opens: a command that loaded the
    manifests and opened the backends separately would touch prod's names from a dev target
    (tests/unit/test_target_prefix_paths.py finds such callers)."""
    from framework.project import load

    chosen = target if isinstance(target, Target) else resolve_target(project_root, target)
    return chosen.apply(project if project is not None else load(project_root))


def open_bus(project_root: str | Path, target_name: str | None = None) -> Any:
    """Just the bus of a target (the caller closes it)."""
    target = resolve_target(project_root, target_name)
    return build_backend(target.bus, project_root, dict(target.settings))


__all__ = ["REGISTRY", "BackendEntry", "Backends", "open_backends", "open_bus", "target_project", "build_backend", "load_class", "register_backend", "known_types"]
