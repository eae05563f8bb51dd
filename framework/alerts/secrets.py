"""Secrets by reference: alert webhook URLs and SMTP passwords never live in pipectl.yaml.

A Slack incoming-webhook URL *is* a credential (whoever has it can post), and ``pipectl
package`` copies ``pipectl.yaml`` into the Cloud Function bundle. So a secret-bearing field
takes a reference instead of the value::

    url: {env: SLACK_WEBHOOK_URL}                                  # an environment variable
    url: {secret: projects/P/secrets/slack-url/versions/latest}    # Google Secret Manager
    password: {env: SMTP_PASSWORD}

An inline string still works on a laptop, but ``pipectl validate`` warns about it and
``pipectl package`` refuses to ship it. Secret Manager is imported only when a ``secret:``
reference is resolved (the CLI never loads the SDK otherwise); the client is injectable
(:func:`use_secret_client`) so the resolution is tested without Google Cloud. Errors name
the reference (variable or secret path), never the value.
"""
from __future__ import annotations

import os
import re
import threading
from typing import Any, Callable, Mapping
from urllib.parse import urlsplit

from framework.errors import ConfigError, PipectlError

SECRET_PATH = re.compile(r"^projects/[^/]+/secrets/[^/]+/versions/[^/]+$")
SECRET_FIELDS = {"webhook": ("url",), "email": ("password",)}  # per sink type: fields holding a credential
LEGACY_ENV_FIELDS = {"url_env": "url", "password_env": "password"}

_client_lock = threading.Lock()
_client_factory: Callable[[], Any] | None = None
_cache: dict[str, str] = {}


def use_secret_client(factory: Callable[[], Any] | None) -> None:
    """Replace the Secret Manager client factory (tests inject a fake; ``None`` restores the
    real ``google.cloud.secretmanager.SecretManagerServiceClient``). Clears the cache."""
    global _client_factory
    with _client_lock:
        _client_factory = factory
        _cache.clear()


def _secret_client() -> Any:
    if _client_factory is not None:
        return _client_factory()
    from framework.backends.gcp_common import require

    secretmanager = require("google.cloud.secretmanager")
    return secretmanager.SecretManagerServiceClient()


def is_reference(value: Any) -> bool:
    return isinstance(value, Mapping) and set(value) in ({"env"}, {"secret"})


def describe(value: Any) -> str:
    """How a field is given, safe to print: ``env SLACK_URL``, ``secret projects/...``, ``inline value``."""
    if is_reference(value):
        kind, ref = next(iter(value.items()))
        return f"{kind} {ref}"
    return "inline value"


def resolve(value: Any, where: str) -> str:
    """The secret a field holds: an inline string as is, ``{env: VAR}`` from the environment,
    ``{secret: projects/P/secrets/S/versions/V}`` from Secret Manager (cached per process)."""
    if isinstance(value, str):
        return value
    if not is_reference(value):
        raise ConfigError(f"{where}: expected a string, {{env: VAR}} or {{secret: projects/P/secrets/S/versions/latest}}",
                          hint="see docs/runtime.md#secrets")
    if "env" in value:
        var = str(value["env"])
        found = os.environ.get(var)
        if not found:
            raise ConfigError(f"{where}: environment variable {var} is not set", hint=f"export {var}=... (or deploy with --set-secrets)")
        return found
    path = str(value["secret"])
    if not SECRET_PATH.match(path):
        raise ConfigError(f"{where}: secret reference {path!r} is not projects/P/secrets/S/versions/V",
                          hint="e.g. projects/my-proj/secrets/slack-webhook/versions/latest")
    with _client_lock:
        if path in _cache:
            return _cache[path]
    try:
        response = _secret_client().access_secret_version(request={"name": path})
    except PipectlError:  # a missing SDK names its extra
        raise
    except Exception as exc:  # noqa: BLE001 - any client failure: named by reference, value never shown
        raise ConfigError(f"{where}: reading secret {path} from Secret Manager failed: {type(exc).__name__}: {exc}",
                          hint="grant roles/secretmanager.secretAccessor on the secret to the runtime's service account") from exc
    text = response.payload.data.decode("utf-8").strip()
    with _client_lock:
        _cache[path] = text
    return text


def sink_field(spec: Mapping[str, Any], name: str, where: str, required: bool = True) -> str | None:
    """A secret-bearing field of a sink, also accepting the older ``<name>_env: VAR`` form."""
    legacy = next((k for k, v in LEGACY_ENV_FIELDS.items() if v == name and spec.get(k)), None)
    if spec.get(name) is not None:
        return resolve(spec[name], f"{where}.{name}")
    if legacy:
        return resolve({"env": spec[legacy]}, f"{where}.{legacy}")
    if required:
        raise ConfigError(f"{where}: '{name}' is required: {{env: VAR}} or {{secret: projects/P/secrets/S/versions/latest}}",
                          hint="see docs/runtime.md#secrets")
    return None


def inline_secrets(alerts: Mapping[str, Any] | None) -> list[tuple[tuple, str]]:
    """``(json path, message)`` of every credential written inline in the ``alerts:`` mapping."""
    found = []
    for i, spec in enumerate((alerts or {}).get("sinks") or []):
        if not isinstance(spec, Mapping):
            continue
        for name in SECRET_FIELDS.get(str(spec.get("type")), ()):
            if isinstance(spec.get(name), str):
                found.append((("alerts", "sinks", i, name),
                              f"alerts.sinks[{i}].{name} of the {spec['type']} sink is written inline: it is a credential "
                              f"and would ship in the function bundle"))
    return found


def redact_url(url: str) -> str:
    """``https://hooks.slack.com/…``: enough to tell which service, never the token path."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<malformed url>"
    if parts.scheme and parts.hostname:
        return f"{parts.scheme}://{parts.hostname}/…"
    return "<malformed url>"


__all__ = ["resolve", "sink_field", "inline_secrets", "redact_url", "use_secret_client", "describe", "is_reference"]
