"""The orchestrator's alert hook.

The orchestrator calls ``alerts.alert(signature, severity, message, context)`` after a
commit, never inside a transaction (a retried transaction must not alert twice). Any object
with that method works: ``framework.alerts`` builds rate-limited sinks with it (so a
retry storm is one alert plus a summary, FAILURE-MODES 21). Without one, alerts go to the
``pipectl.orchestrator`` logger, so nothing is silent even in a bare setup.
"""
from __future__ import annotations

import logging
from typing import Any, Mapping, Protocol

log = logging.getLogger("pipectl.orchestrator")

_LEVELS = {"info": logging.INFO, "warning": logging.WARNING, "error": logging.ERROR, "critical": logging.CRITICAL}


class AlertHook(Protocol):
    def alert(self, signature: str, severity: str, message: str, context: Mapping[str, Any]) -> None: ...


class LoggingAlerts:
    """Default hook: one log record per alert at the alert's severity."""

    def __init__(self, logger: logging.Logger | None = None):
        self.logger = logger or log

    def alert(self, signature: str, severity: str, message: str, context: Mapping[str, Any]) -> None:
        self.logger.log(_LEVELS.get(severity, logging.ERROR), "[%s] %s: %s", severity.upper(), signature, message,
                        extra={"alert_context": dict(context)})


class RecordingAlerts:
    """Keeps alerts in a list (tests, and ``pipectl sweep`` which prints them)."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, str, str, dict[str, Any]]] = []

    def alert(self, signature: str, severity: str, message: str, context: Mapping[str, Any]) -> None:
        self.sent.append((signature, severity, message, dict(context)))

    def signatures(self) -> list[str]:
        return [s for s, *_ in self.sent]
