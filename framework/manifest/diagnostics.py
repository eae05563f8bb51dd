"""Diagnostics: located problems collected during loading, resolving and validation.

Validation never stops at the first problem; every rule appends here and the caller decides
(``pipectl validate`` prints all of them, the library raises :class:`ManifestError` once).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable

from framework.errors import Location

ERROR = "error"
WARNING = "warning"


@dataclass(frozen=True)
class Diagnostic:
    """One located problem (or note) found in a project: severity, stable code, message, where, and the fix."""

    severity: str
    code: str
    message: str
    location: Location
    hint: str | None = None

    def __str__(self) -> str:
        text = f"{self.location}: {self.severity}: {self.message}"
        if self.hint:
            text += f" ({self.hint})"
        return text

    def to_dict(self) -> dict:
        return {
            "severity": self.severity,
            "code": self.code,
            "message": self.message,
            "file": self.location.file,
            "line": self.location.line,
            "column": self.location.column,
            "hint": self.hint,
        }


@dataclass
class Diagnostics:
    """Every problem of a load or a validate run, collected so that all are reported at once, never the first only."""

    items: list[Diagnostic] = field(default_factory=list)
    # What validation could not check (e.g. the column lineage of a Python transform): shown,
    # never counted as a problem (``--strict`` ignores notes).
    notes: list[Diagnostic] = field(default_factory=list)

    def note(self, code: str, message: str, location: Location, hint: str | None = None) -> None:
        self.notes.append(Diagnostic("note", code, message, location, hint))

    def error(self, code: str, message: str, location: Location, hint: str | None = None) -> None:
        self.items.append(Diagnostic(ERROR, code, message, location, hint))

    def warning(self, code: str, message: str, location: Location, hint: str | None = None) -> None:
        self.items.append(Diagnostic(WARNING, code, message, location, hint))

    def extend(self, other: Iterable[Diagnostic]) -> None:
        self.items.extend(other)

    @property
    def errors(self) -> list[Diagnostic]:
        return [d for d in self.items if d.severity == ERROR]

    @property
    def warnings(self) -> list[Diagnostic]:
        return [d for d in self.items if d.severity == WARNING]

    def sorted(self) -> list[Diagnostic]:
        return sorted(self.items, key=lambda d: (d.location.file, d.location.line, d.location.column, d.code))


def did_you_mean(name: str, candidates: Iterable[str]) -> str | None:
    """Return a "did you mean 'x'?" hint for the closest candidate, if any is close enough."""
    candidates = list(candidates)
    folded = {c.lower(): c for c in candidates if isinstance(c, str)}
    if isinstance(name, str) and name.lower() in folded:  # `Player`, `PLAYER` for `player`
        return f"did you mean '{folded[name.lower()]}'?"
    import difflib  # only when a name is wrong: not paid by every command that loads a manifest

    matches = difflib.get_close_matches(name, candidates, n=1, cutoff=0.6)
    return f"did you mean '{matches[0]}'?" if matches else None
