"""Deprecated alias: ``framework.runtime`` was split into :mod:`framework.run` and :mod:`framework.drive`.

Why an alias: projects scaffolded before the split import ``framework.runtime.landing`` in
their ``sample_data.py`` hook, and user transforms may import
``framework.runtime.transform.partition_param``. ``import framework.runtime.X`` keeps working
(it returns the moved module itself, so monkeypatching and ``isinstance`` behave) and warns
with the new name. Nothing in ``framework/`` imports this package (the layers contract keeps
it that way); it will be removed in 0.3.
"""
from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import sys
import warnings
from types import ModuleType

MOVED = {
    **{name: "framework.run" for name in (
        "changes", "code_state", "fanout", "history", "runner", "runner_io", "table_diff", "transform", "verify")},
    **{name: "framework.drive" for name in (
        "bus_setup", "dead_letters", "demo", "demo_place", "driver_state", "landing", "pipeline", "replay",
        "reports", "session", "trace")},
}


class MovedModuleLoader(importlib.abc.Loader):
    """Loads ``framework.runtime.X`` as the module it moved to (the same object, not a copy)."""

    def __init__(self, target: str) -> None:
        self.target = target

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType:
        warnings.warn(f"{spec.name} moved to {self.target}; import it from there "
                      "(the framework.runtime alias goes away in pipectl 0.3)", DeprecationWarning, stacklevel=2)
        return importlib.import_module(self.target)

    def exec_module(self, module: ModuleType) -> None:
        """The target module is already executed by ``import_module``."""


class MovedModuleFinder(importlib.abc.MetaPathFinder):
    """Resolves ``framework.runtime.<old name>`` through :data:`MOVED`."""

    def find_spec(self, fullname: str, path: object = None, target: object = None) -> importlib.machinery.ModuleSpec | None:
        package, _, name = fullname.rpartition(".")
        if package != __name__ or name not in MOVED:
            return None
        return importlib.machinery.ModuleSpec(fullname, MovedModuleLoader(f"{MOVED[name]}.{name}"))


if not any(isinstance(finder, MovedModuleFinder) for finder in sys.meta_path):
    sys.meta_path.insert(0, MovedModuleFinder())
