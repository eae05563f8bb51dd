"""Why a delivery failed, kept per message payload for the dead-letter listing.

A broker carries no error with a message it gives up on: Pub/Sub forwards the bare message
to the dead-letter topic, and the local bus knows only what a consumer's ``nack(error=...)``
told it. So whoever fails to handle a message records why under a hash of its payload
(``pipectl_delivery_errors``): the orchestrator when a trigger cannot be published or an
envelope is refused, the Cloud Function for anything else it re-raises. ``pipectl bus
dead-letters`` looks the dead letter's payload up and shows the first error.
"""
from __future__ import annotations

import hashlib
import time
from typing import Any

DELIVERY_ERRORS = "pipectl_delivery_errors"
MAX_CHARS = 2000


def payload_key(data: bytes) -> str:
    return hashlib.sha256(bytes(data)).hexdigest()[:40]


def record_delivery_error(store: Any, data: bytes, error: str, topic: str | None = None, now: float | None = None) -> None:
    """Remember why a delivery of this payload failed: the first error and the latest."""
    key, at, text = payload_key(data), time.time() if now is None else now, error[:MAX_CHARS]

    def txn(t: Any) -> None:
        doc = t.get(DELIVERY_ERRORS, key)
        if doc is None:
            t.set(DELIVERY_ERRORS, key, {"first_error": text, "first_at": at, "last_error": text, "last_at": at,
                                         "failures": 1, "topic": topic})
        else:
            t.set(DELIVERY_ERRORS, key, {**doc, "last_error": text, "last_at": at, "failures": int(doc.get("failures", 0)) + 1,
                                         "topic": doc.get("topic") or topic})

    store.run_transaction(txn)


__all__ = ["DELIVERY_ERRORS", "payload_key", "record_delivery_error"]
