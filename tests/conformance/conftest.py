"""Bus conformance fixtures: one harness per Bus implementation.

Every test in ``test_bus_conformance.py`` runs once per entry of ``BUS_FACTORIES``. A
factory takes pytest's ``request`` and ``tmp_path`` and returns a :class:`BusHarness`.

Adding an implementation is one line in ``BUS_FACTORIES`` plus its factory function, e.g.
for the Pub/Sub emulator (started by ``.ci/run``)::

    def pubsub_emulator(request, tmp_path) -> BusHarness:
        from framework.backends.pubsub import PubSubBus
        bus = PubSubBus(project="test-project")          # PUBSUB_EMULATOR_HOST from the env
        return BusHarness(bus, prefix=f"c{uuid.uuid4().hex[:8]}-", advance=time.sleep,
                          min_ack_deadline=10, settle_seconds=2.0)

    BUS_FACTORIES.append(pytest.param(pubsub_emulator, id="pubsub", marks=pytest.mark.gcp))

Rules the harness encodes so one test suite fits a fake clock and a real service:
names go through ``h.name()`` (a shared emulator keeps state between tests); time moves
only through ``h.advance()`` (fake clock locally, sleep on a real service); waiting for
messages goes through ``h.pull_until()`` (a real pull may return fewer than available);
asserting that nothing arrives goes through ``h.pull_nothing()`` (waits ``settle_seconds``).
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Callable

import pytest

from framework.backends.protocols import ReceivedMessage


class FakeClock:
    def __init__(self, now: float = 1_700_000_000.0):
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class BusHarness:
    """A bus under test plus the few knobs that differ between implementations."""

    bus: Any
    prefix: str = ""
    advance: Callable[[float], None] = time.sleep
    min_ack_deadline: int = 10  # Pub/Sub's minimum; tests use this as the short deadline
    settle_seconds: float = 0.0  # how long "nothing arrives" is observed
    cleanup: list[Callable[[], None]] = field(default_factory=list)

    def name(self, base: str) -> str:
        return f"{self.prefix}{base}"

    def pull_until(self, subscription: str, count: int, timeout: float = 30.0, max_messages: int = 10) -> list[ReceivedMessage]:
        """Pull until ``count`` messages arrived (fails after ``timeout`` real seconds)."""
        got: list[ReceivedMessage] = []
        deadline = time.monotonic() + timeout
        while len(got) < count:
            got.extend(self.bus.pull(subscription, max_messages=max_messages))
            if len(got) >= count:
                break
            if time.monotonic() > deadline:
                pytest.fail(f"only {len(got)} of {count} messages arrived on {subscription} within {timeout}s")
            time.sleep(0.05)
        return got

    def pull_nothing(self, subscription: str) -> None:
        """Assert that no message is (or becomes, within ``settle_seconds``) available."""
        deadline = time.monotonic() + self.settle_seconds
        while True:
            got = self.bus.pull(subscription, max_messages=10)
            assert got == [], f"unexpected messages on {subscription}: {[m.data for m in got]}"
            if time.monotonic() >= deadline:
                return
            time.sleep(0.1)


def local_bus(request: pytest.FixtureRequest, tmp_path) -> BusHarness:
    from framework.backends.localbus import LocalBus

    clock = FakeClock()
    bus = LocalBus(tmp_path / "conformance-bus.sqlite", clock=clock)
    return BusHarness(bus, advance=clock.advance, min_ack_deadline=10, cleanup=[bus.close])


# One entry per Bus implementation; see the module docstring to add one.
BUS_FACTORIES: list[Any] = [
    pytest.param(local_bus, id="local"),
]


def pubsub_emulator(request: pytest.FixtureRequest, tmp_path) -> BusHarness:
    """Pub/Sub emulator (``.ci/emulators.sh``); fails, never skips, when it is down."""
    import uuid

    from gcp_support import require_emulators

    require_emulators("pubsub")
    from framework.backends.pubsub import PubSubBus

    bus = PubSubBus(project="test-project")  # PUBSUB_EMULATOR_HOST from the environment
    return BusHarness(bus, prefix=f"c{uuid.uuid4().hex[:8]}-", advance=time.sleep, min_ack_deadline=10,
                      settle_seconds=2.0, cleanup=[bus.close])


BUS_FACTORIES.append(pytest.param(pubsub_emulator, id="pubsub", marks=pytest.mark.gcp))


@pytest.fixture(params=BUS_FACTORIES)
def harness(request: pytest.FixtureRequest, tmp_path) -> BusHarness:
    h = request.param(request, tmp_path)
    yield h
    for fn in reversed(h.cleanup):
        fn()

