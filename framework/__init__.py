"""pipectl: a declarative framework for multi-phase, event-driven data pipelines.

The package is a library first; ``framework.cli`` is a thin layer over it. Importing the
package must stay cheap (no cloud SDKs, no duckdb) so that ``pipectl --help`` and
``pipectl validate`` start fast.
"""
from __future__ import annotations

__version__ = "0.1.0"
