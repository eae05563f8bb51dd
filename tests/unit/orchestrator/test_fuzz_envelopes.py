"""Seeded fuzz of completion envelopes through the orchestrator: every malformed message is
rejected (alerted and dead-lettered with its reason) or recorded; nothing escapes as an
uncaught exception and nothing undeclared reaches a trigger."""
from __future__ import annotations

import json
import os
import random

from fuzz import mutate_envelope
from orch_support import RAW, completion

CASES = int(os.environ.get("PIPECTL_FUZZ_CASES", "400"))
ACTIONS = {"recorded", "duplicate", "late", "triggered", "monitored", "waiting", "rejected", "ignored", "gates_needed"}


def test_fuzzed_envelopes_are_recorded_or_dead_lettered(make_orch, bus, alerts):
    orch = make_orch(dead_letter_topic="dlq")
    rng = random.Random(12)
    rejected = 0
    for i in range(CASES):
        base = completion(rng.choice(RAW), execution_id=f"e{i}", entities_changed={"player": [f"p{i}"]})
        message, steps = mutate_envelope(rng, base)
        before = len(bus.published)
        decision = orch.handle_completion(message)  # must not raise: a DLQ is configured
        assert decision.action in ACTIONS, (steps, decision)
        if decision.action == "rejected":
            rejected += 1
            assert decision.reason, steps
            topic, _, attrs = bus.published[before]
            assert topic == "dlq" and attrs["error"], steps
    assert rejected > CASES // 3  # the mutator mostly breaks things: most cases must be refused
    for topic, data, _ in bus.published:
        if topic != "dlq":
            kinds = set(json.loads(data).get("entities_changed") or {})
            assert kinds <= {"player", "team"}, kinds
