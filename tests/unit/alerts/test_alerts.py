"""Alerts: first always sent, at most N per window, one summary for the rest (FM 21)."""
from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from framework.errors import ConfigError
from framework.alerts import Alerts, MemorySink, WebhookSink, alerts_from_config, parse_seconds


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_first_sent_then_rate_limited_then_one_summary() -> None:
    clock, sink = Clock(), MemorySink()
    alerts = Alerts([sink], max_per_window=3, window_seconds=60, clock=clock)
    outcomes = [alerts.alert("failed:x", "error", f"boom {i}", {"i": i}) for i in range(10)]
    assert outcomes == ["sent"] * 3 + ["suppressed"] * 7
    assert [a.message for a in sink.sent] == ["boom 0", "boom 1", "boom 2"]
    clock.now += 61
    assert alerts.alert("failed:x", "error", "boom 10") == "sent"
    summary = sink.sent[3]
    assert summary.is_summary and summary.suppressed == 7
    assert "suppressed 7 similar alerts" in summary.text() and "boom 9" in summary.text()
    assert sink.sent[4].message == "boom 10"


def test_signatures_are_limited_independently_and_flush_sends_ended_windows() -> None:
    clock, sink = Clock(), MemorySink()
    alerts = Alerts([sink], max_per_window=1, window_seconds=10, clock=clock)
    for _ in range(3):
        alerts.alert("a", "error", "a")
        alerts.alert("b", "warning", "b")
    assert [a.signature for a in sink.sent] == ["a", "b"]
    assert alerts.flush() == 0  # windows still open
    clock.now += 10
    assert alerts.flush() == 2
    assert sorted((a.signature, a.suppressed) for a in sink.sent[2:]) == [("a", 2), ("b", 2)]


def test_aggregate_mode_sends_one_summary_per_signature_at_flush() -> None:
    sink = MemorySink()
    alerts = Alerts([sink], max_per_window=5, clock=Clock(), aggregate=True)
    for i in range(40):
        alerts.alert(f"failed:{i % 2}", "error", f"date {i}")
    assert sink.sent == []
    assert alerts.flush() == 2
    assert sorted(a.suppressed for a in sink.sent) == [20, 20]
    assert all("aggregated during backfill" in a.message for a in sink.sent)


def test_failing_sink_is_logged_not_raised(caplog: pytest.LogCaptureFixture) -> None:
    class Broken:
        name = "broken"

        def send(self, alert):
            raise OSError("connection refused")

    good = MemorySink()
    alerts = Alerts([Broken(), good], clock=Clock())
    with caplog.at_level("ERROR", logger="pipectl.alerts"):
        alerts.alert("s", "critical", "m")
    assert len(good.sent) == 1
    assert alerts.sink_errors and "connection refused" in alerts.sink_errors[0]
    assert "alert sink 'broken' failed" in caplog.text


def _receiver():
    received: list[dict] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.append({"path": self.path, "ctype": self.headers["Content-Type"], "json": json.loads(body)})
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    return server, received


def test_webhook_posts_slack_style_json_to_a_local_server() -> None:
    server, received = _receiver()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/hook"
        alerts = alerts_from_config({"max_per_window": 1, "window": "1m",
                                     "sinks": [{"type": "webhook", "url": url, "channel": "#data"}]}, clock=Clock())
        alerts.alert("gate:analytics", "critical", "quality gate blocked", {"partition": "2026-01-15", "rows": 0})
        alerts.alert("gate:analytics", "critical", "again")
    finally:
        server.shutdown()
        server.server_close()
    assert len(received) == 1
    doc = received[0]
    assert doc["path"] == "/hook" and doc["ctype"] == "application/json"
    assert doc["json"]["text"] == "[CRITICAL] gate:analytics: quality gate blocked"
    assert doc["json"]["channel"] == "#data"
    att = doc["json"]["attachments"][0]
    assert att["color"] == "danger"
    assert {f["title"]: f["value"] for f in att["fields"]} == {"partition": "2026-01-15", "rows": "0"}


def test_webhook_to_a_closed_port_is_recorded_as_sink_error() -> None:
    server, _ = _receiver()
    port = server.server_address[1]
    server.server_close()
    alerts = Alerts([WebhookSink(f"http://127.0.0.1:{port}/x", timeout=2)], clock=Clock())
    alerts.alert("s", "error", "m")
    assert len(alerts.sink_errors) == 1


def test_config_errors_name_the_fix(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ConfigError, match="unknown sink type"):
        alerts_from_config({"sinks": [{"type": "pagerduty"}]})
    with pytest.raises(ConfigError, match="url_env"):
        alerts_from_config({"sinks": [{"type": "webhook", "url_env": "NOPE_NOT_SET_X"}]})
    with pytest.raises(ConfigError, match="unknown key"):
        alerts_from_config({"max_per_minute": 3})
    monkeypatch.setenv("HOOK_X", "http://127.0.0.1:9/h")
    alerts = alerts_from_config({"sinks": [{"type": "webhook", "url_env": "HOOK_X"}, {"type": "log"}], "window": "2h"})
    assert [s.name for s in alerts.sinks] == ["webhook", "log"] and alerts.window_seconds == 7200
    assert parse_seconds("90s") == 90 and parse_seconds(5) == 5


def test_unknown_severity_is_sent_as_error_not_dropped(caplog: pytest.LogCaptureFixture) -> None:
    sink = MemorySink()
    with caplog.at_level("WARNING", logger="pipectl.alerts"):
        assert Alerts([sink], clock=Clock()).alert("s", "page-me", "m") == "sent"
    assert sink.sent[0].severity == "error" and "unknown severity" in caplog.text


def test_closing_a_session_reports_alerts_suppressed_in_an_open_window() -> None:
    """FM 21 without silence: a command that ends inside the rate-limit window must still say
    how many alerts it suppressed (the limiter dies with the process)."""
    from framework.drive.session import Session

    class Backends:
        def close(self) -> None:
            pass

    clock, sink = Clock(), MemorySink()
    alerts = Alerts([sink], max_per_window=2, window_seconds=300, clock=clock)
    for i in range(5):
        alerts.alert("processor_failed:x", "error", f"boom {i}")
    assert alerts.flush() == 0  # the sweeper's periodic flush: window still open
    Session(project=None, backends=Backends(), alerts=alerts).close()  # type: ignore[arg-type]
    assert len(sink.sent) == 3 and sink.sent[-1].suppressed == 3 and "boom 4" in sink.sent[-1].message


def test_a_sink_raising_anything_is_recorded_and_the_other_sinks_still_get_the_alert() -> None:
    """A sink bug (not only a network error) must not escape into the run that alerted, nor
    starve the sinks after it (the run escaped and stayed 'running')."""
    class Broken:
        name = "broken"

        def send(self, alert) -> None:
            raise RuntimeError("template bug")

    sink = MemorySink()
    alerts = Alerts([Broken(), sink], clock=Clock())
    assert alerts.alert("processor_failed:x", "error", "boom") == "sent"
    assert [a.message for a in sink.sent] == ["boom"]
    assert "alert sink 'broken' failed for processor_failed:x: template bug" in alerts.sink_errors[0]


def test_a_log_sink_is_an_unlimited_alerter_at_the_alert_severity(caplog: pytest.LogCaptureFixture) -> None:
    """The orchestrator's default alerter (no ``alerts`` given): every alert, one record each, at
    its own level, with the same text as a sink delivers."""
    import logging

    from framework.alerts import LogSink

    alerter = LogSink(logging.getLogger("pipectl.orchestrator"))
    with caplog.at_level(logging.INFO, logger="pipectl.orchestrator"):
        for i in range(7):
            assert alerter.alert("gate:x", "critical", f"blocked {i}", {"partition": "2026-01-15"}) == "sent"
        alerter.alert("late", "warning", "late completion")
    records = [r for r in caplog.records if r.name == "pipectl.orchestrator"]
    assert [r.levelno for r in records] == [logging.CRITICAL] * 7 + [logging.WARNING]
    assert records[0].getMessage() == "[CRITICAL] gate:x: blocked 0"
    assert records[0].alert_context == {"partition": "2026-01-15"}


def test_the_orchestrator_alerts_on_its_logger_without_an_alerter(tmp_path, caplog: pytest.LogCaptureFixture) -> None:
    import logging

    from framework.alerts import LogSink
    from framework.orchestrator import Orchestrator
    from framework.project import load
    from projects import copy_example

    project = load(copy_example(tmp_path / "p"))
    orch = Orchestrator(project, store=None, bus=None)
    assert isinstance(orch.alerts, LogSink) and orch.alerts.logger.name == "pipectl.orchestrator"


def test_a_memory_sink_records_every_alert_as_an_alerter() -> None:
    sink = MemorySink()
    for _ in range(10):
        sink.alert("stalled:raw", "error", "no progress")
    assert sink.signatures() == ["stalled:raw"] * 10
    assert sink.sent[0].text() == "[ERROR] stalled:raw: no progress" and sink.sent[0].timestamp > 0
