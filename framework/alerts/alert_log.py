"""The alert log: every alert a command delivers, kept in the StateStore for `pipectl ui`.

In the alerts layer (not the runtime) because the orchestrator service attaches it too.

Sinks (log, webhook, email) send an alert away; nothing kept it, so "what fired in the last
hour, and how much was suppressed" had no answer after the process ended. :class:`StoreSink`
is one more sink, attached by the Session and the orchestrator service next to the
configured ones: each delivered alert, and each summary with its suppressed count, becomes a
small document of collection ``pipectl_alerts`` (SQLite ledger or Firestore alike).
"""
from __future__ import annotations

import uuid
from typing import Any

from framework.alerts import AlertMessage

ALERTS = "pipectl_alerts"


class StoreSink:
    """An alert sink that records alerts in a StateStore (never raises past ``Alerts``)."""

    name = "store"

    def __init__(self, store: Any):
        self.store = store

    def send(self, alert: AlertMessage) -> None:
        key = f"{int(alert.timestamp * 1000):015d}-{uuid.uuid4().hex[:8]}"
        doc = {"signature": alert.signature, "severity": alert.severity, "message": alert.message,
               "context": {k: v if isinstance(v, (str, int, float, bool)) or v is None else str(v)
                           for k, v in dict(alert.context).items()},
               "timestamp": alert.timestamp, "suppressed": alert.suppressed}

        def txn(t: Any) -> None:
            t.set(ALERTS, key, doc)

        self.store.run_transaction(txn)


def attach(alerts: Any, store: Any) -> Any:
    """Add a :class:`StoreSink` on ``store`` to an ``Alerts`` object (once); returns it."""
    if not any(isinstance(s, StoreSink) for s in alerts.sinks):
        alerts.sinks.append(StoreSink(store))
    return alerts


def recent_alerts(store: Any, limit: int = 100) -> list[dict[str, Any]]:
    """Recorded alerts, newest first (summaries carry ``suppressed`` > 0)."""
    docs = [dict(doc, id=key) for key, doc in store.query(ALERTS)]
    docs.sort(key=lambda d: (d.get("timestamp") or 0, d["id"]), reverse=True)
    return docs[:limit]
