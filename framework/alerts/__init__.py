"""Rate-limited alerts: loud about failures without flooding anyone (FM 21).

The production platform sent 600+ emails in one retry storm. Here every alert carries a
*signature* (for example ``processor_failed:player_game_summary``). The first alert of a
signature is always sent; within one window at most ``max_per_window`` alerts of that
signature are sent; the rest are counted and, when the window ends, replaced by one summary
("suppressed K similar alerts"). Backfill mode (``aggregate=True``) sends nothing until
:meth:`Alerts.flush`, which sends one summary per signature.

Two words, one each (not "hook": a hook is project code pipectl calls, e.g. ``sample_data.py``):

* an **alerter** (:class:`Alerter`) is what code that raises alerts holds: one method,
  ``alert(signature, severity, message, context)``. The orchestrator calls it after a commit,
  never inside a transaction (a retried transaction must not alert twice); a processor run
  calls it when it fails. :class:`Alerts`, the rate limiter, is the alerter every command builds.
* an **alert sink** (:class:`AlertSink`) delivers one :class:`AlertMessage`:
  ``send(message)``. A log sink, a Slack-style webhook sink and an SMTP email sink
  (:mod:`framework.alerts.smtp`) are built in and configured from ``pipectl.yaml``
  (``alerts:``, see docs/runtime.md); their credentials come by reference
  (:mod:`framework.alerts.secrets`). :class:`LogSink` and :class:`MemorySink` are alerters
  too (every alert, unlimited): the orchestrator's default when it is given none (a log record on
  ``pipectl.orchestrator``, so nothing is silent even in a bare setup) and the test double.

Why its own package, below the orchestrator, the driver and the runner: the orchestrator
(sweep, status, the Cloud Function) and processor runs alert through the same rate limiter
and sinks, and the orchestrator may import neither the driver nor the runner.
A sink that fails is logged at ERROR and counted in :attr:`Alerts.sink_errors`; it never
breaks the pipeline run that raised the alert, and it never fails silently.
"""
from __future__ import annotations

import json
import logging
import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Protocol

from framework.alerts.secrets import redact_url, sink_field
from framework.errors import ConfigError

log = logging.getLogger("pipectl.alerts")

SEVERITIES = ("info", "warning", "error", "critical")


@dataclass(frozen=True)
class AlertMessage:
    """What a sink receives. ``suppressed`` > 0 marks an aggregated summary."""

    signature: str
    severity: str
    message: str
    context: Mapping[str, Any] = field(default_factory=dict)
    timestamp: float = 0.0
    suppressed: int = 0

    @property
    def is_summary(self) -> bool:
        return self.suppressed > 0

    def text(self) -> str:
        head = f"[{self.severity.upper()}] {self.signature}: {self.message}"
        if self.suppressed:
            head += f" (suppressed {self.suppressed} similar alerts)"
        return head


class Alerter(Protocol):
    """What raises alerts: :class:`Alerts` (rate limited), or a :class:`LogSink` /
    :class:`MemorySink` used directly (every alert, unlimited)."""

    def alert(self, signature: str, severity: str, message: str, context: Mapping[str, Any] | None = None) -> Any: ...


class AlertSink(Protocol):
    """What delivers an alert the alerter decided to send (log, webhook, email, memory)."""

    name: str

    def send(self, alert: AlertMessage) -> None: ...


class DirectAlerter:
    """Makes a sink an unlimited :class:`Alerter`: every ``alert()`` is sent at once, stamped
    with the wall clock. For the orchestrator's bare default and tests; commands use
    :class:`Alerts` so a retry storm is one alert plus a summary."""

    def alert(self, signature: str, severity: str, message: str, context: Mapping[str, Any] | None = None) -> str:
        item = AlertMessage(signature, severity, message, dict(context or {}), time.time())
        self.send(item)  # type: ignore[attr-defined]  # the sink's own send
        return "sent"


LOG_LEVELS = {"info": logging.INFO, "warning": logging.WARNING, "error": logging.ERROR, "critical": logging.CRITICAL}


class LogSink(DirectAlerter):
    """Writes alerts to a logger (``pipectl.alerts`` unless given; stderr by default in the
    CLI), one record per alert at the alert's severity."""

    name = "log"

    def __init__(self, logger: logging.Logger | None = None):
        self.logger = logger or log

    def send(self, alert: AlertMessage) -> None:
        self.logger.log(LOG_LEVELS.get(alert.severity, logging.ERROR), alert.text(),
                        extra={"alert_context": dict(alert.context)})


class MemorySink(DirectAlerter):
    """Keeps alerts in a list: the test double, and what `pipectl backfill` prints at the end."""

    name = "memory"

    def __init__(self) -> None:
        self.sent: list[AlertMessage] = []

    def send(self, alert: AlertMessage) -> None:
        self.sent.append(alert)

    def signatures(self) -> list[str]:
        """The signatures of the alerts kept, in order (what most tests assert)."""
        return [a.signature for a in self.sent]


class WebhookSink:
    """POSTs a Slack-style JSON body (``{"text": ..., "attachments": [...]}``) with urllib.

    Works with Slack incoming webhooks and anything that accepts JSON (Teams/Chat adapters,
    a local receiver). Non-2xx answers and network errors raise, so :class:`Alerts` logs them.
    """

    name = "webhook"

    def __init__(self, url: str, timeout: float = 5.0, channel: str | None = None, username: str = "pipectl"):
        if not url.startswith(("http://", "https://")):  # the url is a credential: never printed
            raise ConfigError("alerts webhook url must start with http:// or https:// (the value is not shown: it is a secret)",
                              hint="check the variable or secret alerts.sinks[].url refers to")
        self.url = url
        self.timeout = timeout
        self.channel = channel
        self.username = username

    def payload(self, alert: AlertMessage) -> dict[str, Any]:
        color = {"info": "#439FE0", "warning": "warning"}.get(alert.severity, "danger")
        fields = [{"title": str(k), "value": str(v), "short": True} for k, v in sorted(alert.context.items())]
        body: dict[str, Any] = {
            "username": self.username,
            "text": alert.text(),
            "attachments": [{"color": color, "title": alert.signature, "text": alert.message, "fields": fields,
                             "ts": int(alert.timestamp)}],
        }
        if self.channel:
            body["channel"] = self.channel
        return body

    def send(self, alert: AlertMessage) -> None:
        import urllib.request

        data = json.dumps(self.payload(alert), default=str).encode()
        req = urllib.request.Request(self.url, data=data, method="POST", headers={"Content-Type": "application/json"})
        try:
            resp_cm = urllib.request.urlopen(req, timeout=self.timeout)  # noqa: S310 (url validated above)
        except OSError as exc:  # urllib errors may quote the url: say which host only
            raise OSError(f"alert webhook {redact_url(self.url)} failed: {type(exc).__name__}: "
                          f"{str(exc).replace(self.url, redact_url(self.url))}") from None
        with resp_cm as resp:
            if not 200 <= resp.status < 300:
                raise OSError(f"alert webhook {redact_url(self.url)} answered HTTP {resp.status}")


@dataclass
class _Window:
    """Sent and suppressed counts of one alert key in its current rate-limit window."""

    started: float
    sent: int = 0
    suppressed: int = 0
    last: AlertMessage | None = None


class Alerts:
    """Per-signature rate limiting in front of one or more sinks.

    Thread safe (fan-out workers alert from threads). The window state lives in this object:
    one process, one limiter; the CLI builds one per command.
    """

    def __init__(self, sinks: Iterable[AlertSink] = (), max_per_window: int = 5, window_seconds: float = 300.0,
                 clock: Callable[[], float] = time.time, aggregate: bool = False):
        if max_per_window < 1:
            raise ConfigError("alerts.max_per_window must be at least 1 (the first alert is always sent)")
        self.sinks = list(sinks) or [LogSink()]
        self.max_per_window = max_per_window
        self.window_seconds = window_seconds
        self.clock = clock
        self.aggregate = aggregate
        self.sink_errors: list[str] = []
        self.sent_count = 0
        self.suppressed_count = 0
        self._windows: dict[str, _Window] = {}
        self._lock = threading.Lock()

    def alert(self, signature: str, severity: str, message: str, context: Mapping[str, Any] | None = None) -> str:
        """Raise an alert. Returns ``"sent"`` or ``"suppressed"`` (suppressed ones are counted
        and reported in the window's summary, never dropped without trace)."""
        if severity not in SEVERITIES:  # never lose an alert over its label
            log.warning("alert %s has unknown severity %r (expected one of %s); sent as 'error'", signature, severity, SEVERITIES)
            severity = "error"
        now = self.clock()
        msg = AlertMessage(signature, severity, message, dict(context or {}), now)
        to_send: list[AlertMessage] = []
        with self._lock:
            win = self._windows.get(signature)
            if win is not None and not self.aggregate and now - win.started >= self.window_seconds:
                summary = self._summary(signature, win, now)
                if summary:
                    to_send.append(summary)
                win = None
            if win is None:
                win = self._windows[signature] = _Window(started=now)
            win.last = msg
            if not self.aggregate and win.sent < self.max_per_window:
                win.sent += 1
                to_send.append(msg)
                outcome = "sent"
            else:
                win.suppressed += 1
                self.suppressed_count += 1
                outcome = "suppressed"
        for item in to_send:
            self._deliver(item)
        return outcome

    def flush(self, final: bool = False) -> int:
        """Send the pending summaries (windows that ended, or everything in aggregate mode).
        Returns the number of summaries sent. The sweeper calls it periodically; a command
        calls it with ``final=True`` when it ends: the limiter lives in the process, so a window
        still open at exit would otherwise take its suppressed count with it, unreported."""
        now = self.clock()
        to_send: list[AlertMessage] = []
        with self._lock:
            for sig in list(self._windows):
                win = self._windows[sig]
                if final or self.aggregate or now - win.started >= self.window_seconds:
                    summary = self._summary(sig, win, now)
                    if summary:
                        to_send.append(summary)
                    del self._windows[sig]
        for item in to_send:
            self._deliver(item)
        return len(to_send)

    def _summary(self, signature: str, win: _Window, now: float) -> AlertMessage | None:
        if not win.suppressed or win.last is None:
            return None
        last = win.last
        text = (f"{win.suppressed} alert(s) aggregated during backfill; last: {last.message}" if self.aggregate
                else f"last: {last.message}")
        return AlertMessage(signature, last.severity, text, dict(last.context), now, suppressed=win.suppressed)

    def _deliver(self, msg: AlertMessage) -> None:
        self.sent_count += 1
        for sink in self.sinks:
            try:
                sink.send(msg)
            except Exception as exc:  # noqa: BLE001 - any sink bug: logged and recorded, never breaks the run alerting
                reason = f"alert sink '{getattr(sink, 'name', sink)}' failed for {msg.signature}: {exc}"
                self.sink_errors.append(reason)
                log.error("%s (alert was: %s)", reason, msg.text())


def alerts_from_config(config: Mapping[str, Any] | None, clock: Callable[[], float] = time.time,
                       aggregate: bool = False) -> Alerts:
    """Build :class:`Alerts` from the ``alerts:`` mapping of pipectl.yaml.

    ``{max_per_window: 5, window: 5m, sinks: [{type: log}, {type: webhook, url: {env: VAR}},
    {type: email, host: ..., to: [...], password: {secret: projects/P/secrets/S/versions/latest}}]}``.
    Credentials are resolved here (env or Secret Manager, :mod:`framework.alerts.secrets`).
    With no config: a log sink, 5 per 5 minutes.
    """
    cfg = dict(config or {})
    unknown = set(cfg) - {"max_per_window", "window", "window_seconds", "sinks"}
    if unknown:
        raise ConfigError(f"pipectl.yaml alerts: unknown key(s) {sorted(unknown)}",
                          hint="allowed: max_per_window, window, sinks")
    window = cfg.get("window_seconds", cfg.get("window", 300))
    sinks: list[AlertSink] = []
    for i, spec in enumerate(cfg.get("sinks") or [{"type": "log"}]):
        kind, where = spec.get("type"), f"pipectl.yaml alerts.sinks[{i}]"
        if kind == "log":
            sinks.append(LogSink())
        elif kind == "webhook":
            url = sink_field(spec, "url", where) or ""
            sinks.append(WebhookSink(url, timeout=float(spec.get("timeout", 5)), channel=spec.get("channel")))
        elif kind == "email":
            from framework.alerts.smtp import email_sink_from_config

            sinks.append(email_sink_from_config(spec, where))
        else:
            raise ConfigError(f"{where}: unknown sink type {kind!r}", hint="use 'log', 'webhook' or 'email'")
    return Alerts(sinks, max_per_window=int(cfg.get("max_per_window", 5)), window_seconds=parse_seconds(window),
                  clock=clock, aggregate=aggregate)


def load_alerts_config(project_root: Path) -> dict[str, Any] | None:
    """The ``alerts:`` mapping of pipectl.yaml (None without a file or key)."""
    path = Path(project_root) / "pipectl.yaml"
    if not path.exists():
        return None
    from framework.errors import ManifestError
    from framework.manifest.diagnostics import Diagnostics
    from framework.manifest.loader import load_yaml

    diags = Diagnostics()  # the one YAML reader (YAML 1.2, located errors), as for every manifest
    loaded = load_yaml(path, "pipectl.yaml", diags)
    if diags.errors:
        raise ManifestError(diags.sorted())
    data = loaded.data if loaded is not None else {}
    alerts = data.get("alerts") if isinstance(data, dict) else None
    if alerts is not None and not isinstance(alerts, dict):
        raise ConfigError(f"{path}: 'alerts' must be a mapping", hint="see docs/runtime.md#alerts")
    return alerts


def parse_seconds(value: Any) -> float:
    """``300``, ``"90s"``, ``"5m"``, ``"1h"``, ``"1d"`` -> seconds."""
    if isinstance(value, (int, float)):
        return float(value)
    text = str(value).strip()
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    if text and text[-1] in units:
        try:
            return float(text[:-1]) * units[text[-1]]
        except ValueError:
            pass
    try:
        return float(text)
    except ValueError:
        raise ConfigError(f"not a duration: {value!r}", hint="use seconds or '90s', '5m', '1h', '1d'") from None
