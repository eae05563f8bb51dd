"""One error tree for pipectl.

Every error the library raises on purpose derives from :class:`PipectlError`, so the CLI can
render it as ``error: file:line:col: message`` and exit 1 without a traceback, while genuine
bugs still surface as tracebacks.
"""
from __future__ import annotations

from typing import Iterable


class Location:
    """Where a node came from: 1-based line and column in a file.

    Locations of a clean manifest are never printed, so loading records only the node's
    JSON path and resolves line/column lazily (from a ``LineIndex``) when first asked.
    That keeps validating 10,000 processors fast while every diagnostic stays exact.
    """

    __slots__ = ("file", "_line", "_column", "_index", "_path")

    def __init__(self, file: str, line: int = 0, column: int = 0, index: "LineIndex | None" = None, path: tuple = ()):
        self.file = file
        self._line = line
        self._column = column
        self._index = index
        self._path = path

    def _resolve(self) -> None:
        if self._index is not None:
            self._line, self._column = self._index.position(self._path)
            self._index = None

    @property
    def line(self) -> int:
        self._resolve()
        return self._line

    @property
    def column(self) -> int:
        self._resolve()
        return self._column

    def __str__(self) -> str:
        if self.line:
            return f"{self.file}:{self.line}:{self.column}"
        return self.file

    def __repr__(self) -> str:
        return f"Location({str(self)!r})"

    def __reduce__(self) -> tuple:
        """Pickled resolved (line and column, not the index that finds them): a cached
        project (:mod:`framework.project.cache`) never re-parses its YAML to print one."""
        return (Location, (self.file, self.line, self.column))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Location):
            return NotImplemented
        return (self.file, self.line, self.column) == (other.file, other.line, other.column)

    def __hash__(self) -> int:
        return hash((self.file, self.line, self.column))


class LineIndex:
    """Maps JSON paths to (line, column); built on first use by ``build``."""

    def __init__(self, build):
        self._build = build
        self._table: dict | None = None

    def position(self, path: tuple) -> tuple[int, int]:
        if self._table is None:
            self._table = self._build()
        p = tuple(path)
        while p:
            found = self._table.get(p)
            if found is not None:
                return found
            p = p[:-1]
        return self._table.get((), (1, 1))


class PipectlError(Exception):
    """Base of every deliberate pipectl error."""

    def __init__(self, message: str, location: Location | None = None, hint: str | None = None):
        self.message = message
        self.location = location
        self.hint = hint
        super().__init__(self.render())

    def render(self) -> str:
        text = f"{self.location}: {self.message}" if self.location else self.message
        if self.hint:
            text += f" (hint: {self.hint})"
        return text


class ManifestError(PipectlError):
    """A manifest cannot be loaded or resolved. Carries every diagnostic found."""

    def __init__(self, diagnostics: Iterable["object"]):
        self.diagnostics = list(diagnostics)
        first = self.diagnostics[0] if self.diagnostics else None
        msg = "; ".join(str(d) for d in self.diagnostics[:5]) or "invalid manifest"
        if len(self.diagnostics) > 5:
            msg += f"; and {len(self.diagnostics) - 5} more"
        super().__init__(msg, getattr(first, "location", None))

    def render(self) -> str:  # diagnostics already carry their own locations
        return self.message


class ConfigError(PipectlError):
    """Project configuration (pipectl.yaml, CLI arguments) is wrong."""


class BackendError(PipectlError):
    """A backend operation failed; raised at the backend edge with the table/topic and a fix."""


class MissingDependencyError(BackendError):
    """An optional dependency (cloud SDK) is not installed; names the extra to install."""

    def __init__(self, module: str, extra: str):
        super().__init__(
            f"the Python package '{module}' is required for this backend but is not installed",
            hint=install_hint(extra),
        )


def install_hint(extra: str) -> str:
    """How to add ``extra`` to *this* installation. The name ``pipectl`` on PyPI belongs to
    another project, so the hint names where this pipectl came from (PEP 610's
    ``direct_url.json``: a checkout, a wheel file or a git URL)."""
    import json
    from importlib import metadata

    try:
        direct = json.loads(metadata.distribution("pipectl").read_text("direct_url.json") or "null")
    except (metadata.PackageNotFoundError, ValueError):
        direct = None
    url = direct.get("url") if isinstance(direct, dict) else None
    if url:
        if (direct.get("dir_info") or {}).get("editable") and url.startswith("file://"):
            return f"pip install -e '{url[len('file://'):]}[{extra}]'"
        vcs = direct.get("vcs_info")
        if isinstance(vcs, dict):
            url = f"{vcs.get('vcs', 'git')}+{url}@{vcs.get('requested_revision') or vcs.get('commit_id')}"
        return f"pip install 'pipectl[{extra}] @ {url}'"
    return (f"install pipectl with its [{extra}] extra from where it came from: pip install '/path/to/pipectl[{extra}]' "
            f"or pip install 'pipectl[{extra}] @ git+<repository URL>' (the name pipectl on PyPI is another project)")


class EnvelopeError(PipectlError):
    """A message does not satisfy the envelope contract."""


class QualityGateError(PipectlError):
    """A blocking quality gate failed. Never swallowed: it reaches the caller."""


class PlanError(PipectlError):
    """A plan cannot be made or applied (destructive change refused, stale plan, lock held)."""
