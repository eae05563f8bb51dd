"""Who may look and who may act: the token, and cross-site request protection.

The UI reads a pipeline's ledger and can, with ``--allow-actions``, re-run partitions and
replay dead letters. On 127.0.0.1 only the machine's own user reaches it; bound anywhere else
a token is required (``--token`` or ``PIPECTL_UI_TOKEN``), given once as ``?token=`` (then
kept in an HttpOnly, SameSite=Strict cookie) or as ``Authorization: Bearer``. Every POST
needs the page's CSRF token (an HMAC of a per-process secret) and, when the browser sends
one, an Origin (or Referer) equal to the UI's own: a page on another site cannot forge an
action even while the user is logged in.
"""
from __future__ import annotations

import hashlib
import hmac
import ipaddress
import secrets
from urllib.parse import urlsplit

COOKIE = "pipectl_ui_token"


def is_loopback(host: str) -> bool:
    if host in ("localhost", ""):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


LOOPBACK_NAMES = ["127.0.0.1", "localhost", "::1"]


def hostname(host_header: str) -> str:
    """``[::1]:8765`` -> ``::1``; ``localhost:8765`` -> ``localhost``."""
    parts = urlsplit(f"//{host_header}")
    return (parts.hostname or "").lower()


class Guard:
    """Token and CSRF checks of one UI process."""

    def __init__(self, token: str | None, secret: bytes | None = None):
        self.token = token or None
        self.secret = secret or secrets.token_bytes(32)

    # -- token --------------------------------------------------------------------------
    def token_ok(self, query_token: str | None, cookie: str | None, authorization: str | None) -> bool:
        if self.token is None:
            return True
        bearer = authorization[7:] if authorization and authorization.lower().startswith("bearer ") else None
        return any(c is not None and hmac.compare_digest(c.encode(), self.token.encode())
                   for c in (query_token, cookie, bearer))

    # -- csrf ---------------------------------------------------------------------------
    def csrf_token(self) -> str:
        return hmac.new(self.secret, b"pipectl-ui-csrf", hashlib.sha256).hexdigest()

    def csrf_ok(self, form_token: str | None) -> bool:
        return bool(form_token) and hmac.compare_digest(form_token.encode(), self.csrf_token().encode())

    @staticmethod
    def same_origin(origin: str | None, referer: str | None, scheme: str, host: str) -> bool:
        """False when the browser says the request comes from another origin. A client that
        sends neither header (curl, a script) is not a browser page: the CSRF token decides."""
        mine = f"{scheme}://{host}".lower()
        if origin and origin != "null":
            return origin.lower().rstrip("/") == mine
        if origin == "null":
            return False
        if referer:
            parts = urlsplit(referer)
            return f"{parts.scheme}://{parts.netloc}".lower() == mine
        return True
