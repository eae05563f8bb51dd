"""One error tree for pipectl.

Every error the library raises on purpose derives from :class:`PipectlError`, so the CLI can
render it as ``error: file:line:col: message`` and exit 1 without a traceback, while genuine
bugs still surface as tracebacks.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable


@dataclass(frozen=True)
class Location:
    """Where a node came from: 1-based line and column in a file."""

    file: str
    line: int = 0
    column: int = 0

    def __str__(self) -> str:
        if self.line:
            return f"{self.file}:{self.line}:{self.column}"
        return self.file


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
            hint=f"pip install 'pipectl[{extra}]'",
        )


class EnvelopeError(PipectlError):
    """A message does not satisfy the envelope contract."""


class QualityGateError(PipectlError):
    """A blocking quality gate failed. Never swallowed: it reaches the caller."""


class PlanError(PipectlError):
    """A plan cannot be made or applied (destructive change refused, stale plan, lock held)."""
