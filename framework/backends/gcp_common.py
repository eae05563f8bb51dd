"""Small helpers shared by the Google Cloud backends (BigQuery, Pub/Sub, Firestore).

Kept free of any cloud SDK import at module import time: the SDKs are imported through
:func:`require`, which turns a missing package into a :class:`MissingDependencyError`
naming the ``[gcp]`` extra, so ``pipectl --help`` never pays for (or fails on) them.
"""
from __future__ import annotations

import importlib
import os
import re
from types import ModuleType
from typing import Mapping

from framework.errors import MissingDependencyError

GCP_EXTRA = "gcp"
_LABEL_KEY_RE = re.compile(r"[^a-z0-9_-]")


def require(module: str) -> ModuleType:
    """Import a cloud SDK module lazily; a missing one names the extra to install."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:  # the SDK (or one of its deps) is not installed
        raise MissingDependencyError(module, GCP_EXTRA) from exc


def sanitize_label_value(value: str) -> str:
    """Map any text onto BigQuery/Pub/Sub label rules: lowercase letters, digits, ``_`` and
    ``-``, at most 63 characters. Correlation ids and processor names (``CamelCase``, dots)
    must survive as labels so jobs can be traced back to a run."""
    text = _LABEL_KEY_RE.sub("_", str(value).lower())
    return text[:63]


def sanitize_label_key(key: str) -> str:
    """Label keys follow the value rules and must also start with a lowercase letter."""
    text = sanitize_label_value(key) or "k"
    if not text[0].isalpha():
        text = ("k" + text)[:63]
    return text


def sanitize_labels(labels: Mapping[str, str] | None) -> dict[str, str]:
    """Sanitized copy of ``labels`` (at most 64 entries, the GCP limit)."""
    out: dict[str, str] = {}
    for key, value in (labels or {}).items():
        if len(out) >= 64:
            break
        out[sanitize_label_key(key)] = sanitize_label_value(value)
    return out


def bounded_retry(timeout: float) -> object:
    """A client retry policy whose retries end after ``timeout`` seconds in all.

    Why: the SDKs' default retries keep retrying an unreachable endpoint for 60-600 s
    whatever per-request ``timeout`` is passed, so one Pub/Sub or Firestore outage hung every
    call (and the Cloud Function invocation) far past the configured timeout. Only transient
    errors are retried; Firestore contention (``Aborted``) is left to the store's own loop.
    Exhaustion raises ``google.api_core.exceptions.RetryError``: callers translate it."""
    retry = require("google.api_core.retry")
    exc = require("google.api_core.exceptions")
    transient = retry.if_exception_type(exc.ServiceUnavailable, exc.InternalServerError, exc.TooManyRequests,
                                        exc.DeadlineExceeded)
    return retry.Retry(predicate=transient, initial=0.1, maximum=min(5.0, max(0.1, timeout / 4)), multiplier=2.0,
                       timeout=timeout)


def anonymous_credentials_if_emulated(env_var: str, credentials: object | None) -> object | None:
    """Emulators accept any credentials; use anonymous ones so no ADC lookup happens offline."""
    if credentials is not None or not os.environ.get(env_var):
        return credentials
    return require("google.auth.credentials").AnonymousCredentials()
