"""Who sent a completion: processor identity resolved through the manifest.

Producers publish names in several forms (the declared name, a legacy alias such as a
class name, the output table with or without its dataset). Every form resolves through
:meth:`Project.resolve_processor`, the single source of names, so no copy of an expected
list can drift (FAILURE-MODES 1-3). An unknown name is never skipped silently: the caller
gets an :class:`UnknownProcessor` error to alert on and dead-letter.
"""
from __future__ import annotations

from typing import Any, Mapping

from framework.errors import EnvelopeError
from framework.manifest.model import Processor, Project, Transition


class UnknownProcessor(EnvelopeError):
    """A completion names a processor the manifest does not declare."""


def resolve(project: Project, identity: str) -> Processor:
    """The declared processor behind a published name, or UnknownProcessor naming the fix."""
    proc = project.resolve_processor(identity)
    if proc is None and identity.count(".") == 2:  # `project.dataset.table` from a fully qualified publisher
        proc = project.resolve_processor(identity.split(".", 1)[1])  # only the project id is dropped
    if proc is None:
        from framework.manifest.diagnostics import did_you_mean

        hint = did_you_mean(identity, list(project.processors)) or None
        raise UnknownProcessor(
            f"completion from unknown processor {identity!r}: no processor, alias or output table of that name in processors.yaml",
            hint=hint or "declare it, or add the published name to the processor's aliases",
        )
    return proc


def transition_of(project: Project, processor: Processor) -> Transition | None:
    """The transition that tracks completions of ``processor``'s phase (None for the last phase)."""
    try:
        return project.phase(processor.phase).transition
    except KeyError:
        return None


class ContractViolation(EnvelopeError):
    """A well-formed completion that disagrees with the manifest (undeclared entity kind,
    a phase other than its processor's, a partition its type cannot hold)."""


def check_contract(project: Project, env: Mapping[str, Any], processor: Processor) -> None:
    """Reject what the envelope schema cannot know: the manifest's names. An entity kind
    written ``players`` or ``Player`` (the origin system's Player/Team key mismatch) would
    otherwise be forwarded in the trigger and match nothing downstream (FAILURE-MODES 9)."""
    from framework.manifest.diagnostics import did_you_mean
    from framework.manifest.partition import parse_partition

    reasons = []
    if env.get("phase") != processor.phase:
        reasons.append(f"phase: {env.get('phase')!r} but processor {processor.name!r} is in phase {processor.phase!r}")
    try:
        parse_partition(env.get("partition"), project.partition_type)
    except ValueError as exc:
        reasons.append(f"partition: {exc}")
    entities = env.get("entities_changed")
    if isinstance(entities, Mapping):
        for kind in entities:
            if kind not in project.entity_kinds:
                hint = did_you_mean(str(kind), project.entity_kinds) or f"declared kinds: {', '.join(sorted(project.entity_kinds))}"
                reasons.append(f"entities_changed.{kind}: undeclared entity kind {kind!r} ({hint})")
    if reasons:
        raise ContractViolation(
            f"completion from {processor.name!r} disagrees with processors.yaml: " + "; ".join(reasons),
            hint="publish the processor's declared phase and the entity kind names of entity_kinds",
        )
