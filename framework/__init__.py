"""pipectl: a declarative framework for multi-phase, event-driven data pipelines.

The package is a library first; ``framework.cli`` is a thin layer over it. Importing the
package must stay cheap (no cloud SDKs, no duckdb) so that ``pipectl --help`` and
``pipectl validate`` start fast; the compiled code of dataclass methods is kept across
processes for the same reason (``framework.dataclass_code``), installed before the first
of pipectl's dataclasses is created.
"""
from __future__ import annotations

from framework import dataclass_code as _dataclass_code

__version__ = "0.1.0"

_dataclass_code.install()
