"""Where the local Google Cloud emulators are, and whether they answer.

Used by the GCP integration tests, the conformance suites and ``bench/bench_firestore.py``
(all started by ``.ci/emulators.sh``). Standard variables are honoured: the Pub/Sub and
Firestore clients read ``PUBSUB_EMULATOR_HOST`` / ``FIRESTORE_EMULATOR_HOST`` themselves;
BigQuery has no standard variable, so pipectl reads ``BIGQUERY_EMULATOR_HOST`` (a URL) in
:class:`framework.backends.bigquery.BigQueryWarehouse` when no ``api_endpoint`` is given.
"""
from __future__ import annotations

import os
import urllib.error
import urllib.request
from dataclasses import dataclass

DEFAULTS = {
    "PUBSUB_EMULATOR_HOST": "127.0.0.1:8085",
    "FIRESTORE_EMULATOR_HOST": "127.0.0.1:8080",
    "BIGQUERY_EMULATOR_HOST": "http://127.0.0.1:9050",
}
EMULATOR_PROJECT = "test-project"  # bqemulator is started for this project id


@dataclass(frozen=True)
class Endpoint:
    """One emulator: its environment variable, base URL and health URL."""

    name: str
    env_var: str
    base_url: str
    health_url: str


def use_emulators() -> None:
    """Point every client at the local emulators (setdefault: an explicit value wins).

    Called before any client is built so a test can never reach real Google Cloud.
    """
    for var, value in DEFAULTS.items():
        os.environ.setdefault(var, value)
    os.environ.setdefault("GOOGLE_CLOUD_PROJECT", EMULATOR_PROJECT)


def _url(value: str) -> str:
    return value if value.startswith("http") else f"http://{value}"


def endpoints() -> list[Endpoint]:
    env = {var: os.environ.get(var, default) for var, default in DEFAULTS.items()}
    bq = _url(env["BIGQUERY_EMULATOR_HOST"]).rstrip("/")
    ps = _url(env["PUBSUB_EMULATOR_HOST"]).rstrip("/")
    fs = _url(env["FIRESTORE_EMULATOR_HOST"]).rstrip("/")
    return [
        Endpoint("bigquery", "BIGQUERY_EMULATOR_HOST", bq, bq + "/healthz"),
        Endpoint("pubsub", "PUBSUB_EMULATOR_HOST", ps, ps + "/"),
        Endpoint("firestore", "FIRESTORE_EMULATOR_HOST", fs, fs + "/"),
    ]


def endpoint(name: str) -> Endpoint:
    return next(e for e in endpoints() if e.name == name)


def is_healthy(ep: Endpoint, timeout: float = 3.0) -> bool:
    try:
        with urllib.request.urlopen(ep.health_url, timeout=timeout) as resp:  # noqa: S310 - local URL
            return 200 <= resp.status < 300
    except (urllib.error.URLError, OSError, ValueError):
        return False


def down(names: tuple[str, ...] = ("bigquery", "pubsub", "firestore")) -> list[Endpoint]:
    """The emulators among ``names`` that do not answer their health URL."""
    return [ep for ep in endpoints() if ep.name in names and not is_healthy(ep)]


def explain_down(missing: list[Endpoint]) -> str:
    listed = ", ".join(f"{ep.name} at {ep.health_url} (${ep.env_var})" for ep in missing)
    return (f"Google Cloud emulator(s) not answering: {listed}. Start them with "
            f"'bash .ci/emulators.sh start' (CI does this in .ci/run), or set PIPECTL_SKIP_GCP=1 to skip "
            f"the GCP tests on a machine without emulators (CI never sets it).")


def reset_pubsub() -> None:
    """Drop every topic and subscription of the Pub/Sub emulator (``POST /reset``)."""
    req = urllib.request.Request(endpoint("pubsub").base_url + "/reset", method="POST", data=b"")
    with urllib.request.urlopen(req, timeout=10):  # noqa: S310 - local URL
        pass


def reset_firestore(project: str = EMULATOR_PROJECT, database: str = "(default)") -> None:
    """Delete every document of the Firestore emulator's database."""
    url = f"{endpoint('firestore').base_url}/emulator/v1/projects/{project}/databases/{database}/documents"
    with urllib.request.urlopen(urllib.request.Request(url, method="DELETE"), timeout=30):  # noqa: S310
        pass
