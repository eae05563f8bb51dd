"""Validation rules for entity-mapping tables as dependencies, registered by
:mod:`framework.graph.rules`.

A processor's change detection reads each of its mappings' tables at the partition. The
graph orders the table's writer first (:class:`framework.graph.graph.PipelineGraph`), which is
only possible when the writer does not run after the reader by construction:

* ``mapping-from-later-phase``: the table is written in a later phase, so when the reader
  detects, the table still holds the previous run's pairs (or none, for a new partition). An
  entity that a changed row maps to only in the new pairs is never reprocessed: the
  incremental result differs from a full recompute (which reads no mapping) until some
  unrelated change touches it. pipectl offers no "as of the previous run" mode for this on
  purpose: no reading of a stale mapping keeps incremental == full.
* ``mapping-via-own-output``: the reader maps through its own output, i.e. its previous
  run's: an entity it did not output before is never reached.
* ``mapping-via-disabled`` (warning): a disabled processor never rewrites the table, so
  changes of the reader's other inputs are mapped through whatever rows it last held.

A cycle made by a mapping edge is reported by ``check_cycles`` with the mapping named
(:func:`mapping_cycle_detail`).
"""
from __future__ import annotations

from typing import Any

from framework.graph.graph import MappingUse


def _how(use: MappingUse) -> str:
    named = use.input.mapping is not None
    return (f"input '{use.input.name}' through entity mapping '{use.mapping}'"
            + ("" if named else " (the only mapping between the two kinds)"))


def _fix(use: MappingUse, reader_phase: str) -> str:
    rename = ("name another mapping with 'mapping:' on the input" if use.input.mapping is None
              else "point the input's 'mapping:' at another mapping")
    return (f"map through a table written before '{use.processor}' runs (a source, or a processor of phase "
            f"'{reader_phase}' or earlier that does not read '{use.processor}'): change the mapping's 'via', or {rename}")


def check_mapping_dependencies(ctx: Any) -> None:
    """Every mapping a processor's detection reads is written before it, by an enabled processor."""
    p = ctx.project
    order = {ph.name: ph.order for ph in p.phases}
    for use in ctx.graph.mapping_uses:
        reader = p.processors[use.processor]
        writer = p.processors.get(use.via)
        if writer is None:
            continue  # a source (landed before any run), or unknown: reported by check_phases_and_kinds
        if writer.name == reader.name:
            ctx.diags.error(
                "mapping-via-own-output",
                f"processor '{reader.name}' maps {_how(use)}, whose table is its own output: detection would map "
                f"changes through its previous run's rows, and never reach an entity it did not output before",
                use.input.location, _fix(use, reader.phase))
        elif reader.phase in order and writer.phase in order and order[writer.phase] > order[reader.phase]:
            ctx.diags.error(
                "mapping-from-later-phase",
                f"processor '{reader.name}' (phase {reader.phase}) maps {_how(use)}, whose table '{writer.name}' "
                f"writes in a later phase ({writer.phase}): when '{reader.name}' detects, the table still holds the "
                f"previous run's pairs, so an incremental run misses entities a full recompute includes",
                use.input.location,
                _fix(use, reader.phase) + f", or move '{reader.name}' to phase '{writer.phase}' or later")
        elif not writer.enabled and reader.enabled and not any(i.name == writer.name for i in reader.inputs):
            # (a disabled table that is also an input is frozen with its mapping: no mismatch)
            ctx.diags.warning(
                "mapping-via-disabled",
                f"processor '{reader.name}' maps {_how(use)}, whose table '{writer.name}' is disabled and never "
                f"rewritten: changes are mapped through whatever rows it last held",
                use.input.location, f"enable '{writer.name}', or map through a table that is written")


def mapping_cycle_detail(ctx: Any, path: list[str]) -> tuple[Any, str, str] | str | None:
    """For a cycle ``a -> b -> ... -> a`` that a mapping edge closes: (location of the
    input read through the mapping, the text naming it, the fix), or ``"reported"`` when that
    mapping reads a later phase (``mapping-from-later-phase`` says so at the same line); None
    when every edge is an input (the plain cycle message applies)."""
    uses = {(u.writer_node, u.processor): u for u in ctx.graph.mapping_uses}
    p = ctx.project
    for u, v in zip(path, path[1:]):
        attrs = ctx.graph.succ.get(u, {}).get(v, {})
        use = uses.get((u, v))
        if attrs.get("mapping_only") and use is not None:
            reader, writer = p.processors[use.processor], p.processors.get(use.via)
            order = {ph.name: ph.order for ph in p.phases}
            if writer is not None and order.get(writer.phase, 0) > order.get(reader.phase, 0):
                return "reported"  # mapping-from-later-phase names it, at the same line
            text = (f" ('{u}' -> '{v}' is an entity mapping: '{v}' maps {_how(use)}, whose table '{u}' writes, "
                    f"and '{u}' depends on '{v}')")
            return use.input.location, text, _fix(use, reader.phase) + ", or remove one of the inputs on the cycle"
    return None


__all__ = ["check_mapping_dependencies", "mapping_cycle_detail"]
