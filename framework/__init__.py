"""pipectl: a declarative framework for multi-phase, event-driven data pipelines.

The package is a library first; ``framework.cli`` is a thin layer over it. Importing the
package must stay cheap (no cloud SDKs, no duckdb) so that ``pipectl --help`` and
``pipectl validate`` start fast. Importing it changes nothing outside the package: the
kept code of dataclass methods (``framework.dataclass_code``), which patches the standard
library's :mod:`dataclasses`, is installed by the ``pipectl`` command (``framework.cli``),
not by a program that uses pipectl as a library.
"""
from __future__ import annotations

__version__ = "0.1.0"
