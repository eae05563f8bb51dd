"""Pub/Sub push deliveries in, OIDC tokens checked: the worker's HTTP edge.

Why a module of its own: what a push body looks like and who may send one are the same for
both routes (``/trigger`` and ``/task``) and have nothing to do with running processors. A
body that is not a push envelope is a :class:`MalformedPush` (the route answers 400); a
request whose token is missing or wrong is an :class:`AuthError` (401 / 403).

Push body (https://cloud.google.com/pubsub/docs/push)::

    {"message": {"data": "<base64>", "attributes": {...}, "messageId": "...",
                 "publishTime": "..."}, "subscription": "projects/P/subscriptions/S",
     "deliveryAttempt": 3}

``deliveryAttempt`` is sent only by subscriptions with a dead-letter policy.
"""
from __future__ import annotations

import base64
import binascii
import json
import logging
import os
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

log = logging.getLogger(__name__)

AUDIENCE_ENV = "PIPECTL_WORKER_AUDIENCE"
INVOKERS_ENV = "PIPECTL_WORKER_INVOKERS"
AUTH_ENV = "PIPECTL_WORKER_AUTH"


class MalformedPush(ValueError):
    """The request body is not a Pub/Sub push delivery (or its data is not what the route runs)."""


class AuthError(Exception):
    """The request is not from an allowed push subscription: ``status`` 401 or 403 (503
    when the token could not be checked now: Pub/Sub retries)."""

    def __init__(self, message: str, status: int = 401):
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class PushMessage:
    """One delivery: the message's bytes and attributes and where it came from."""

    data: bytes
    attributes: dict[str, str] = field(default_factory=dict)
    message_id: str = ""
    publish_time: str = ""
    subscription: str = ""
    delivery_attempt: int = 0

    @property
    def subscription_name(self) -> str:
        """``projects/P/subscriptions/S`` -> ``S``."""
        return self.subscription.rsplit("/", 1)[-1]


def parse_push(body: bytes) -> PushMessage:
    """The delivery in ``body``; raises :class:`MalformedPush` saying what is wrong."""
    try:
        doc = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise MalformedPush(f"request body is not JSON: {exc}") from exc
    if not isinstance(doc, dict) or not isinstance(doc.get("message"), dict):
        raise MalformedPush("request body has no 'message' object: not a Pub/Sub push delivery")
    msg = doc["message"]
    raw = msg.get("data", "")
    if not isinstance(raw, str):
        raise MalformedPush("message.data is not a base64 string")
    try:
        data = base64.b64decode(raw, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise MalformedPush(f"message.data is not valid base64: {exc}") from exc
    attrs = msg.get("attributes") or {}
    if not isinstance(attrs, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in attrs.items()):
        raise MalformedPush("message.attributes is not an object of strings")
    attempt = doc.get("deliveryAttempt", 0)
    if not isinstance(attempt, int) or isinstance(attempt, bool):
        raise MalformedPush("deliveryAttempt is not an integer")
    return PushMessage(data, dict(attrs), str(msg.get("messageId") or msg.get("message_id") or ""),
                       str(msg.get("publishTime") or msg.get("publish_time") or ""), str(doc.get("subscription") or ""),
                       attempt)


def parse_json_data(msg: PushMessage, what: str) -> dict[str, Any]:
    """The message data as a JSON object (a fan-out task); :class:`MalformedPush` if not."""
    try:
        doc = json.loads(msg.data)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise MalformedPush(f"{what} {msg.message_id} is not JSON: {exc}") from exc
    if not isinstance(doc, dict):
        raise MalformedPush(f"{what} {msg.message_id} is not a JSON object")
    return doc


# ------------------------------------------------------------------ OIDC
Verifier = Callable[[str, str], Mapping[str, Any]]


def google_verifier(token: str, audience: str) -> Mapping[str, Any]:
    """Google's check of a push subscription's OIDC token (signature, expiry, audience)."""
    from google.auth.transport import requests as google_requests
    from google.oauth2 import id_token

    return id_token.verify_oauth2_token(token, google_requests.Request(), audience=audience)


@dataclass
class Authenticator:
    """Checks ``Authorization: Bearer <OIDC token>`` of push requests.

    ``audience`` (the audience the push subscriptions put in their tokens: the service URL)
    turns the check on; ``invokers`` are the service-account emails allowed to push. Off
    only when explicitly asked (``PIPECTL_WORKER_AUTH=none``) or on the Pub/Sub emulator;
    otherwise a worker without an audience refuses to start, so a deployment never runs
    unauthenticated by omission (FM 19's mirror image). See :meth:`from_env`.
    """

    audience: str | None
    invokers: tuple[str, ...] = ()
    disabled: bool = False
    verifier: Verifier = google_verifier

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, verifier: Verifier | None = None,
                 worker: Any = None) -> "Authenticator":
        """The check the environment asks for, in this order: ``PIPECTL_WORKER_AUTH=none``
        (off); ``PIPECTL_WORKER_AUDIENCE`` (on); the target's ``worker:`` settings (on, when
        a ``service_account`` is set: plan/apply give the push subscriptions that account and
        ``worker.url`` as the audience, and the account is the one invoker); the Pub/Sub
        emulator (``PUBSUB_EMULATOR_HOST``: off, it sends no token); else a ConfigError."""
        from framework.errors import ConfigError

        env = os.environ if env is None else env
        mode = (env.get(AUTH_ENV) or "").strip().lower()
        audience = (env.get(AUDIENCE_ENV) or "").strip() or None
        invokers = tuple(e.strip() for e in (env.get(INVOKERS_ENV) or "").split(",") if e.strip())
        account = getattr(worker, "service_account", None)
        if mode not in ("", "oidc", "none"):
            raise ConfigError(f"{AUTH_ENV}={env.get(AUTH_ENV)!r} is not a mode", hint="use 'oidc' (default) or 'none'")
        if mode == "none":
            if audience:
                raise ConfigError(f"{AUTH_ENV}=none and {AUDIENCE_ENV} are both set: say which",
                                  hint=f"unset {AUTH_ENV} to verify tokens for {audience}")
            log.warning("worker: push requests are NOT authenticated (%s=none): only for the Pub/Sub emulator "
                        "and local runs, never on Cloud Run", AUTH_ENV)
            return cls(None, (), True)
        if not audience and account and getattr(worker, "url", None):
            audience = str(worker.url).rstrip("/")
        if audience:
            return cls(audience, invokers or ((str(account),) if account else ()), False, verifier or google_verifier)
        if env.get("PUBSUB_EMULATOR_HOST") and mode != "oidc":
            log.warning("worker: push requests are NOT authenticated: PUBSUB_EMULATOR_HOST=%s says this is the "
                        "Pub/Sub emulator, which sends no OIDC token (never set it on Cloud Run)",
                        env["PUBSUB_EMULATOR_HOST"])
            return cls(None, (), True)
        raise ConfigError(f"the worker has no OIDC audience to verify push requests against ({AUDIENCE_ENV} is unset "
                          f"and the target has no worker.service_account)",
                          hint=f"set worker.url and worker.service_account in pipectl.yaml (what plan/apply give the "
                               f"push subscriptions), or {AUDIENCE_ENV} (the service URL) and {INVOKERS_ENV}; "
                               f"{AUTH_ENV}=none only for local runs")

    def check(self, authorization: str | None) -> dict[str, Any]:
        """The verified token's claims (empty when disabled); raises :class:`AuthError`."""
        if self.disabled:
            return {}
        scheme, _, token = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise AuthError("missing 'Authorization: Bearer <OIDC token>' header", 401)
        assert self.audience is not None
        try:
            claims = dict(self.verifier(token.strip(), self.audience))
        except ValueError as exc:  # google.auth raises ValueError for bad signature, expiry, audience
            raise AuthError(f"invalid OIDC token: {exc}", 401) from exc
        except Exception as exc:  # noqa: BLE001 - Google's keys unreachable: retry later (503), never let it in
            raise AuthError(f"OIDC token could not be verified now: {type(exc).__name__}: {exc}", 503) from exc
        email = claims.get("email")
        if self.invokers and email not in self.invokers:
            raise AuthError(f"token of {email or 'no email'} is not an allowed invoker ({', '.join(self.invokers)})", 403)
        if self.invokers and claims.get("email_verified") is False:
            raise AuthError(f"token email {email} is not verified", 403)
        return claims
