"""Which parts of a resolved model later stages may trust, and a guard for the rest.

The resolver builds a :class:`Project` even when references are wrong, so that every rule
can report in one pass. Later stages (rendering SQL, parsing it, lineage) assume references
resolve: a processor with ``entity: players`` has no key to render. Rather than teaching
every template and check about broken references, they run only on *sound* processors:
those whose phase, entity kind, inputs, mappings and transform resolve, transitively through
their inputs. The rules already report what makes the others unsound, located.

``guarded`` is the last line: a rule that still raises on a malformed model becomes a
located ``internal-error`` diagnostic (the report stays complete and machine-readable)
instead of a traceback that hides every other problem.
"""
from __future__ import annotations

from typing import Any, Callable

from framework.errors import Location
from framework.manifest.diagnostics import Diagnostics
from framework.manifest.model import Processor, Project


def sound_processors(project: Project) -> set[str]:
    """Names of processors whose every reference resolves, through their inputs too."""
    kinds = project.entity_kinds
    phases = set(project.phase_names())
    mappings_ok = all(_mapping_ok(project, m) for m in project.entity_mappings)
    mapping_names = {m.name for m in project.entity_mappings}
    verdict: dict[str, bool] = {}

    def sound(proc: Processor, visiting: frozenset) -> bool:
        if proc.name in verdict:
            return verdict[proc.name]
        if proc.name in visiting:  # a cycle: reported by check_cycles, nothing to render
            return False
        ok = (proc.phase in phases and (proc.entity is None or proc.entity in kinds)
              and (proc.transform.sql is not None or proc.transform.python is not None))
        for inp in proc.inputs if ok else ():
            if inp.mapping is not None and inp.mapping not in mapping_names:
                ok = False
            elif inp.kind == "source":
                src = project.sources.get(inp.name)
                ok = src is not None and (src.entity is None or src.entity in kinds)
            else:
                up = project.resolve_processor(inp.name)
                ok = up is not None and sound(up, visiting | {proc.name})
            if ok and not mappings_ok and _kind_of(project, inp) not in (None, proc.entity):
                ok = False  # a cross-kind input needs a mapping, and some mapping is broken
            if not ok:
                break
        verdict[proc.name] = ok
        return ok

    return {name for name, proc in project.processors.items() if sound(proc, frozenset())}


def _kind_of(project: Project, inp: Any) -> str | None:
    if inp.kind == "source":
        src = project.sources.get(inp.name)
        return src.entity if src else None
    up = project.resolve_processor(inp.name)
    return up.entity if up else None


def _mapping_ok(project: Project, mapping: Any) -> bool:
    if mapping.source not in project.entity_kinds or mapping.target not in project.entity_kinds:
        return False
    return mapping.via in project.sources or project.resolve_processor(mapping.via) is not None


def guarded(diags: Diagnostics, what: str, location: Location, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Run one check; an exception becomes a located ``internal-error`` diagnostic.

    Only for validation, where one failing check must not hide the others' findings or
    leave a CI job without its report. The message names the check and the exception, and
    the fuzz test treats any such diagnostic as a bug to fix."""
    try:
        return fn(*args, **kwargs)
    except Exception as exc:  # noqa: BLE001 - reported as a diagnostic, never swallowed
        diags.error("internal-error", f"{what} failed on this manifest: {type(exc).__name__}: {exc}", location,
                    "a pipectl bug, not yours: please report it with the manifest; the other checks ran")
        return None
