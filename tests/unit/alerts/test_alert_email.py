"""The SMTP email sink against a real local SMTP server (aiosmtpd) with STARTTLS and AUTH.

The server is started by the tests on a free port with a throwaway self-signed certificate;
the sink trusts it through ``ca_file``. What reaches the server is parsed and asserted:
subjects, aggregation counts, and that the password never appears anywhere.
"""
from __future__ import annotations

import email
import email.policy
import socket
import subprocess
from email.message import Message
from pathlib import Path
from typing import Iterator

import pytest

aiosmtpd_controller = pytest.importorskip("aiosmtpd.controller", reason="pip install -e '.[dev]' (aiosmtpd)")
from aiosmtpd.smtp import AuthResult, LoginPassword  # noqa: E402

from framework.errors import ConfigError  # noqa: E402
from framework.alerts import alerts_from_config  # noqa: E402

PASSWORD = "s3cret-smtp-pass-4711"


class Clock:
    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


class Inbox:
    """aiosmtpd handler: keeps every accepted message and the logins it saw."""

    def __init__(self) -> None:
        self.messages: list[Message] = []
        self.raw: list[bytes] = []
        self.envelopes: list[tuple[str, list[str]]] = []

    async def handle_DATA(self, server, session, envelope):  # noqa: ANN001 - aiosmtpd hook
        self.raw.append(envelope.original_content or envelope.content)
        self.messages.append(email.message_from_bytes(envelope.original_content or envelope.content, policy=email.policy.default))
        self.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos)))
        return "250 OK"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def cert(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    d = tmp_path_factory.mktemp("tls")
    key, crt = d / "key.pem", d / "cert.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(crt),
                    "-days", "1", "-subj", "/CN=localhost", "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"],
                   check=True, capture_output=True)
    return crt, key


@pytest.fixture
def smtp_server(cert: tuple[Path, Path]) -> Iterator[dict]:
    import ssl

    crt, key = cert
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(str(crt), str(key))
    inbox, logins = Inbox(), []

    def authenticator(server, session, envelope, mechanism, auth_data):  # noqa: ANN001 - aiosmtpd hook
        ok = isinstance(auth_data, LoginPassword) and auth_data.login == b"alerts" and auth_data.password == PASSWORD.encode()
        logins.append((mechanism, auth_data.login if isinstance(auth_data, LoginPassword) else None, ok))
        return AuthResult(success=ok, handled=False)  # handled=False: the server answers 535 itself

    port = _free_port()
    controller = aiosmtpd_controller.Controller(inbox, hostname="127.0.0.1", port=port, tls_context=ctx, require_starttls=True,
                                                authenticator=authenticator, auth_require_tls=True)
    controller.start()
    try:
        yield {"port": port, "inbox": inbox, "logins": logins, "ca_file": str(crt)}
    finally:
        controller.stop()


def _config(server: dict, **over) -> dict:
    sink = {"type": "email", "host": "127.0.0.1", "port": server["port"], "from": "pipectl@example.com",
            "to": ["oncall@example.com", "data@example.com"], "username": "alerts", "password": {"env": "PIPECTL_TEST_SMTP_PW"},
            "starttls": True, "ca_file": server["ca_file"]}
    sink.update(over)
    return {"max_per_window": 3, "window": "5m", "sinks": [sink]}


def test_alert_flood_sends_at_most_the_rate_limit_plus_one_summary(smtp_server: dict, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PIPECTL_TEST_SMTP_PW", PASSWORD)
    clock = Clock()
    alerts = alerts_from_config(_config(smtp_server), clock=clock)
    outcomes = [alerts.alert("orchestrator_processor_failed:raw", "critical", f"processor p{i} failed", {"partition": "2025-01-15", "i": i})
                for i in range(40)]
    assert outcomes.count("sent") == 3 and outcomes.count("suppressed") == 37
    alerts.flush(final=True)
    assert alerts.sink_errors == []
    inbox: Inbox = smtp_server["inbox"]
    subjects = [str(m["Subject"]) for m in inbox.messages]
    assert subjects == ["[pipectl] [CRITICAL] orchestrator_processor_failed:raw"] * 3 + \
        ["[pipectl] [CRITICAL] orchestrator_processor_failed:raw: 37 similar alert(s) suppressed"]
    bodies = [m.get_content() for m in inbox.messages]
    assert "processor p0 failed" in bodies[0] and "partition: 2025-01-15" in bodies[0]
    assert "suppressed 37 similar alerts" in bodies[3] and "processor p39 failed" in bodies[3]  # the last one is shown
    assert inbox.envelopes[0] == ("pipectl@example.com", ["oncall@example.com", "data@example.com"])
    assert all(m["X-Pipectl-Signature"] == "orchestrator_processor_failed:raw" for m in inbox.messages)
    # every session went through STARTTLS + AUTH, and the password is in no email
    assert [ok for *_, ok in smtp_server["logins"]] == [True] * 4
    assert not any(PASSWORD.encode() in raw for raw in inbox.raw)


def test_wrong_password_is_a_sink_error_that_never_shows_the_password(smtp_server: dict, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PIPECTL_TEST_SMTP_PW", "not-the-" + PASSWORD)
    alerts = alerts_from_config(_config(smtp_server))
    assert alerts.alert("x", "error", "boom") == "sent"  # the run that alerts is never broken by a sink
    assert len(alerts.sink_errors) == 1
    error = alerts.sink_errors[0]
    assert "refused the login of alerts" in error and PASSWORD not in error
    assert smtp_server["inbox"].messages == []


def test_without_starttls_the_server_refuses_and_the_error_names_the_server(smtp_server: dict, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PIPECTL_TEST_SMTP_PW", PASSWORD)
    alerts = alerts_from_config(_config(smtp_server, starttls=False))
    alerts.alert("x", "error", "boom")
    assert len(alerts.sink_errors) == 1 and f"127.0.0.1:{smtp_server['port']}" in alerts.sink_errors[0]
    assert PASSWORD not in alerts.sink_errors[0]


def test_email_config_errors_are_clear() -> None:
    with pytest.raises(ConfigError, match="'to' needs at least one address"):
        alerts_from_config({"sinks": [{"type": "email", "host": "smtp.example.com"}]})
    with pytest.raises(ConfigError, match="PIPECTL_NOT_SET_PW is not set"):
        alerts_from_config({"sinks": [{"type": "email", "host": "h", "to": "a@b", "username": "u", "password": {"env": "PIPECTL_NOT_SET_PW"}}]})
    with pytest.raises(ConfigError, match="exclude each other"):
        alerts_from_config({"sinks": [{"type": "email", "host": "h", "to": "a@b", "ssl": True, "starttls": True}]})
    with pytest.raises(ConfigError, match=r"unknown key\(s\) \['passwd'\]"):
        alerts_from_config({"sinks": [{"type": "email", "host": "h", "to": "a@b", "passwd": "x"}]})
