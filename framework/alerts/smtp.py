"""The SMTP email sink of :mod:`framework.alerts`.

The platform pipectl replaces alerted its operators by email and Slack; a retry storm once
sent 600+ emails (FAILURE-MODES 21). This sink only *sends*: rate limiting and aggregation
are done by :class:`framework.alerts.Alerts` in front of every sink, so a flood of
one signature is at most ``max_per_window`` emails plus one summary ("suppressed N similar
alerts") whatever the sink.

Transport: plain SMTP, STARTTLS (``starttls: true``, the default when a password is set) or
implicit TLS (``ssl: true``, port 465), optional AUTH. The password comes by reference
(``{env: VAR}`` or ``{secret: projects/...}``, see :mod:`framework.alerts.secrets`) and
never appears in an error message or in the email.
"""
from __future__ import annotations

import smtplib
import socket
import ssl
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import Any, Mapping, Sequence

from framework.errors import ConfigError

EMAIL_KEYS = {"type", "host", "port", "from", "to", "username", "password", "password_env", "starttls", "ssl",
              "timeout", "subject_prefix", "ca_file"}


class EmailSink:
    """Sends each alert (or window summary) as one plain-text email to ``to``."""

    name = "email"

    def __init__(self, host: str, sender: str, to: Sequence[str], port: int | None = None, username: str | None = None,
                 password: str | None = None, starttls: bool | None = None, use_ssl: bool = False, timeout: float = 10.0,
                 subject_prefix: str = "[pipectl]", ca_file: str | None = None):
        if not host:
            raise ConfigError("alerts email sink: 'host' is required", hint="e.g. host: smtp.gmail.com, port: 587")
        if not to:
            raise ConfigError("alerts email sink: 'to' needs at least one address", hint="to: [oncall@example.com]")
        if use_ssl and starttls:
            raise ConfigError("alerts email sink: 'ssl' (implicit TLS, port 465) and 'starttls' exclude each other",
                              hint="use ssl: true with port 465, or starttls: true with port 587")
        self.host, self.sender, self.to = host, sender, list(to)
        self.use_ssl = use_ssl
        self.starttls = (password is not None) if starttls is None and not use_ssl else bool(starttls)
        self.port = port or (465 if use_ssl else 587 if self.starttls else 25)
        self.username, self._password = username, password
        self.timeout, self.subject_prefix, self.ca_file = timeout, subject_prefix, ca_file

    def __repr__(self) -> str:  # never the password
        return f"EmailSink({self.host}:{self.port}, to={self.to}, starttls={self.starttls}, ssl={self.use_ssl})"

    def subject(self, alert: Any) -> str:
        head = f"{self.subject_prefix} [{alert.severity.upper()}] {alert.signature}"
        if alert.suppressed:
            head += f": {alert.suppressed} similar alert(s) suppressed"
        return head

    def message(self, alert: Any) -> EmailMessage:
        msg = EmailMessage()
        msg["Subject"] = self.subject(alert)
        msg["From"] = self.sender
        msg["To"] = ", ".join(self.to)
        msg["Date"] = formatdate(alert.timestamp or None, usegmt=True)
        msg["Message-ID"] = make_msgid(domain="pipectl")
        msg["X-Pipectl-Signature"] = alert.signature
        lines = [alert.text(), ""]
        if alert.suppressed:
            lines += [f"{alert.suppressed} alert(s) of this signature were suppressed by the rate limit; the last one is shown.", ""]
        lines += [f"{k}: {v}" for k, v in sorted(alert.context.items())]
        msg.set_content("\n".join(lines) + "\n")
        return msg

    def _context(self) -> ssl.SSLContext:
        ctx = ssl.create_default_context(cafile=self.ca_file)
        return ctx

    def send(self, alert: Any) -> None:
        """One SMTP session per email; failures raise OSError/SMTPException naming the server
        (:class:`Alerts` logs them and counts them in ``sink_errors``)."""
        msg = self.message(alert)
        try:
            if self.use_ssl:
                client: smtplib.SMTP = smtplib.SMTP_SSL(self.host, self.port, timeout=self.timeout, context=self._context())
            else:
                client = smtplib.SMTP(self.host, self.port, timeout=self.timeout)
            with client:
                client.ehlo()
                if self.starttls:
                    client.starttls(context=self._context())
                    client.ehlo()
                if self.username:
                    client.login(self.username, self._password or "")
                client.send_message(msg)
        except smtplib.SMTPAuthenticationError as exc:
            raise OSError(f"SMTP server {self.host}:{self.port} refused the login of {self.username} (code {exc.smtp_code})") from None
        except (smtplib.SMTPException, ssl.SSLError, socket.timeout, ConnectionError) as exc:
            raise OSError(f"sending alert email via {self.host}:{self.port} failed: {type(exc).__name__}: {_safe(exc, self._password)}") from None


def _safe(exc: BaseException, secret: str | None) -> str:
    text = str(exc)
    return text.replace(secret, "***") if secret else text


def email_sink_from_config(spec: Mapping[str, Any], where: str) -> EmailSink:
    """Build the sink of one ``{type: email, ...}`` entry of ``alerts.sinks``."""
    from framework.alerts.secrets import sink_field

    unknown = set(spec) - EMAIL_KEYS
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {sorted(unknown)} for an email sink", hint=f"allowed: {sorted(EMAIL_KEYS)}")
    to = spec.get("to")
    to = [to] if isinstance(to, str) else list(to or [])
    sender = spec.get("from") or (f"pipectl@{spec.get('host')}" if spec.get("host") else "")
    password = sink_field(spec, "password", where, required=False)
    if password is not None and not spec.get("username"):
        raise ConfigError(f"{where}: 'password' is set but 'username' is not", hint="set username: (the SMTP login)")
    return EmailSink(str(spec.get("host") or ""), sender, to, port=int(spec["port"]) if spec.get("port") else None,
                     username=spec.get("username"), password=password, starttls=spec.get("starttls"),
                     use_ssl=bool(spec.get("ssl", False)), timeout=float(spec.get("timeout", 10)),
                     subject_prefix=str(spec.get("subject_prefix", "[pipectl]")), ca_file=spec.get("ca_file"))


__all__ = ["EmailSink", "email_sink_from_config"]
