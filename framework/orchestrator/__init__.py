"""The generic orchestrator: envelopes, trigger policies, the ledger, the sweeper.

Public API::

    from framework.orchestrator import Orchestrator, TriggerDedup, make_envelope, encode, decode
    orch = Orchestrator(project, store, bus, alerts=None, clock=time.time, gate_checker=None)
    orch.handle_completion(data) -> Decision; orch.sweep() -> [Decision]; orch.status() -> [TransitionStatus]
"""
from __future__ import annotations

from framework.orchestrator.engine import Decision, Orchestrator, TriggerDedup
from framework.orchestrator.entities import load_entity_set, resolve_entities, store_entity_set
from framework.orchestrator.envelope import decode, encode, make_envelope, validate_envelope

__all__ = ["Decision", "Orchestrator", "TriggerDedup", "decode", "encode", "make_envelope", "validate_envelope",
           "load_entity_set", "resolve_entities", "store_entity_set"]
