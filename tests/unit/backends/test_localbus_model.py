"""Stateful property test: LocalBus against a small in-memory model of Pub/Sub semantics.

Hypothesis interleaves publish, pull, ack, nack (with current and stale ack ids),
modify_ack_deadline and clock jumps; after every step the bus must agree with the model
on what was delivered (ids, order, attempts), what is pending and what was dead-lettered.
"""
from __future__ import annotations

from dataclasses import dataclass

import hypothesis.strategies as st
from hypothesis import HealthCheck, settings
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from framework.backends.localbus import LocalBus
from framework.backends.protocols import SubscriptionConfig, TopicConfig

DEADLINE = 10
MAX_ATTEMPTS = 3


@dataclass
class Msg:
    attempts: int = 0
    state: str = "available"  # available | leased | acked | dead
    lease_until: float = 0.0
    token: str | None = None


class BusModel(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        import tempfile

        self.tmp = tempfile.TemporaryDirectory()
        self.now = 1000.0
        self.bus = LocalBus(f"{self.tmp.name}/bus.sqlite", clock=lambda: self.now)
        self.bus.create_topic(TopicConfig("t"))
        self.bus.create_topic(TopicConfig("dlq"))
        self.bus.create_subscription(SubscriptionConfig("s", "t", ack_deadline_seconds=DEADLINE, max_delivery_attempts=MAX_ATTEMPTS, dead_letter_topic="dlq"))
        self.msgs: dict[str, Msg] = {}
        self.ack_ids: list[tuple[str, str]] = []  # (message id, ack id), including stale ones

    def teardown(self) -> None:
        self.bus.close()
        self.tmp.cleanup()

    # -------------------------------------------------------------- model helpers
    def _available(self, m: Msg) -> bool:
        return m.state == "available" or (m.state == "leased" and m.lease_until <= self.now)

    def _dead_letter_exhausted(self) -> None:
        for m in self.msgs.values():
            if self._available(m) and m.attempts >= MAX_ATTEMPTS:
                m.state, m.token = "dead", None

    def _held(self, mid: str, ack_id: str) -> bool:
        m = self.msgs[mid]
        return m.state == "leased" and m.token == ack_id

    # -------------------------------------------------------------- rules
    @rule(n=st.integers(1, 3))
    def publish(self, n: int) -> None:
        for _ in range(n):
            self.msgs[self.bus.publish("t", b"x")] = Msg()

    @rule(max_messages=st.integers(1, 4))
    def pull(self, max_messages: int) -> None:
        self._dead_letter_exhausted()
        expected = [mid for mid in sorted(self.msgs, key=int) if self._available(self.msgs[mid])][:max_messages]
        got = self.bus.pull("s", max_messages=max_messages)
        assert [m.message_id for m in got] == expected
        for message in got:
            m = self.msgs[message.message_id]
            m.attempts += 1
            assert message.delivery_attempt == m.attempts
            m.state, m.lease_until, m.token = "leased", self.now + DEADLINE, message.ack_id
            self.ack_ids.append((message.message_id, message.ack_id))

    @rule(max_messages=st.integers(1, 4))
    def pull_and_fail(self, max_messages: int) -> None:
        """A worker whose handler raises: pull, then nack everything it got."""
        before = len(self.ack_ids)
        self.pull(max_messages)
        for mid, ack_id in self.ack_ids[before:]:
            m = self.msgs[mid]
            m.state, m.token, m.lease_until = "available", None, self.now
            self.bus.nack("s", [ack_id], error="handler failed")
            self._dead_letter_exhausted()

    @precondition(lambda self: self.ack_ids)
    @rule(data=st.data())
    def ack(self, data) -> None:
        mid, ack_id = data.draw(st.sampled_from(self.ack_ids))
        if self._held(mid, ack_id):
            self.msgs[mid].state, self.msgs[mid].token = "acked", None
        self.bus.ack("s", [ack_id])

    @precondition(lambda self: self.ack_ids)
    @rule(data=st.data())
    def nack(self, data) -> None:
        mid, ack_id = data.draw(st.sampled_from(self.ack_ids))
        if self._held(mid, ack_id):
            m = self.msgs[mid]
            m.state, m.token, m.lease_until = "available", None, self.now
        self.bus.nack("s", [ack_id], error="failed")
        self._dead_letter_exhausted()

    @precondition(lambda self: self.ack_ids)
    @rule(data=st.data(), seconds=st.integers(1, 30))
    def extend(self, data, seconds: int) -> None:
        mid, ack_id = data.draw(st.sampled_from(self.ack_ids))
        if self._held(mid, ack_id):
            self.msgs[mid].lease_until = self.now + seconds
        self.bus.modify_ack_deadline("s", [ack_id], seconds)

    @rule(seconds=st.sampled_from([1, 5, DEADLINE - 1, DEADLINE, DEADLINE + 1, 25]))
    def advance(self, seconds: int) -> None:
        self.now += seconds

    # -------------------------------------------------------------- invariants
    @invariant()
    def pending_and_dead_letters_agree(self) -> None:
        pending = sum(1 for m in self.msgs.values() if m.state in ("available", "leased"))
        assert self.bus.pending_count("s") == pending
        dead = sorted(mid for mid, m in self.msgs.items() if m.state == "dead")
        letters = self.bus.dead_letters("dlq")
        assert sorted(d.message_id for d in letters) == dead
        assert all(d.delivery_attempt == MAX_ATTEMPTS for d in letters)


TestLocalBusModel = BusModel.TestCase
TestLocalBusModel.settings = settings(max_examples=100, stateful_step_count=30, deadline=None,
                                      suppress_health_check=[HealthCheck.too_slow])
