"""Pull-consumer loop for any :class:`~framework.backends.protocols.Bus`.

Why a shared loop: every consumer (processor runners, the orchestrator, fan-out workers)
must follow the same contract or messages get lost or looped: ack only after the handler
succeeded; on an exception, log it with its traceback, record it on the message where the
bus can (``records_errors`` capability: the local bus keeps it so ``pipectl`` shows why a
message was redelivered) and nack it so it is redelivered and, after the subscription's
maximum attempts, dead-lettered. Nothing is swallowed: the error is logged, recorded,
counted in :class:`WorkerStats` and the message goes on to the dead-letter topic.
"""
from __future__ import annotations

import logging
import threading
import time
import traceback
from dataclasses import dataclass, field
from typing import Any, Callable

from framework.backends.protocols import Bus, ReceivedMessage

log = logging.getLogger(__name__)

Handler = Callable[[ReceivedMessage], Any]


@dataclass
class HandlerFailure:
    """One failed handling: which message, which attempt, what went wrong."""

    message_id: str
    delivery_attempt: int
    error: str


@dataclass
class WorkerStats:
    """What a worker did; ``failures`` lists every exception a handler raised."""

    pulled: int = 0
    acked: int = 0
    nacked: int = 0
    failures: list[HandlerFailure] = field(default_factory=list)
    timed_out: bool = False

    def merge(self, other: "WorkerStats") -> None:
        self.pulled += other.pulled
        self.acked += other.acked
        self.nacked += other.nacked
        self.failures.extend(other.failures)


def dispatch(bus: Bus, subscription: str, handler: Handler, max_messages: int = 10) -> WorkerStats:
    """Pull once and handle each message: ack on success, nack (recording why) on error."""
    stats = WorkerStats()
    messages = bus.pull(subscription, max_messages=max_messages)
    stats.pulled = len(messages)
    for message in messages:
        try:
            handler(message)
        except Exception as exc:  # noqa: BLE001 - logged, recorded on the message, nacked, counted
            text = "".join(traceback.format_exception_only(type(exc), exc)).strip()
            log.exception("handler failed on message %s of %s (attempt %d): %s",
                          message.message_id, subscription, message.delivery_attempt, text)
            detail = f"{text}\n{traceback.format_exc(limit=8)}"
            if getattr(bus, "records_errors", False):
                bus.nack(subscription, [message.ack_id], error=detail)  # type: ignore[call-arg]
            else:
                bus.nack(subscription, [message.ack_id])
            stats.nacked += 1
            stats.failures.append(HandlerFailure(message.message_id, message.delivery_attempt, text))
        else:
            bus.ack(subscription, [message.ack_id])
            stats.acked += 1
    return stats


def _idle(bus: Bus, subscription: str) -> bool:
    """Nothing left to do: no message available and none leased to anyone (when the bus can
    tell); otherwise a message held by a crashed worker would be abandoned."""
    counter = getattr(bus, "pending_count", None)
    return counter is None or counter(subscription) == 0


def run_worker(
    bus: Bus,
    subscription: str,
    handler: Handler,
    *,
    stop_when_idle: bool = True,
    timeout: float | None = None,
    max_messages: int = 10,
    poll_interval: float = 0.05,
    stop: threading.Event | None = None,
    sleep: Callable[[float], None] = time.sleep,
    monotonic: Callable[[], float] = time.monotonic,
) -> WorkerStats:
    """Consume ``subscription`` until idle (``stop_when_idle``), ``stop`` is set, or
    ``timeout`` seconds pass (then ``stats.timed_out`` is True). Safe to run in several
    processes at once on the local bus: a message is leased to one worker at a time."""
    stats = WorkerStats()
    deadline = None if timeout is None else monotonic() + timeout
    while not (stop is not None and stop.is_set()):
        batch = dispatch(bus, subscription, handler, max_messages)
        stats.merge(batch)
        if not batch.pulled and stop_when_idle and _idle(bus, subscription):
            break
        if deadline is not None and monotonic() >= deadline:
            stats.timed_out = True
            log.warning("worker on %s stopped after its %.1fs timeout with messages still pending", subscription, timeout)
            break
        if not batch.pulled:
            sleep(poll_interval)
    return stats


__all__ = ["dispatch", "run_worker", "WorkerStats", "HandlerFailure", "Handler"]
