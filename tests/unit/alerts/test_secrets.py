"""Secrets by reference: env vars and Secret Manager, never inline in the bundle, never printed.

Secret Manager is reached through ``framework.alerts.secrets.use_secret_client``: the tests
inject ``FakeSecretManagerClient`` (a stand-in for
``google.cloud.secretmanager.SecretManagerServiceClient``, named as such) at that boundary;
no Google Cloud is called.
"""
from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest
from click.testing import CliRunner

from framework.cli import cli as main
from framework.cli import main as pipectl
from framework.errors import ConfigError
from framework.alerts import secrets
from framework.alerts import WebhookSink, alerts_from_config
from projects import copy_example

SLACK = "https://hooks.slack.com/services/T000/B000/XXXXsecretXXXX"


class FakeSecretManagerClient:
    """Stand-in for SecretManagerServiceClient: ``access_secret_version`` from a dict."""

    calls: list[str] = []

    def __init__(self, values: dict[str, str]):
        self.values = values

    def access_secret_version(self, request: dict) -> SimpleNamespace:
        name = request["name"]
        FakeSecretManagerClient.calls.append(name)
        if name not in self.values:
            raise PermissionError(f"403 Permission 'secretmanager.versions.access' denied for resource '{name}'")
        return SimpleNamespace(payload=SimpleNamespace(data=self.values[name].encode()))


@pytest.fixture
def secret_manager() -> dict[str, str]:
    values: dict[str, str] = {}
    FakeSecretManagerClient.calls = []
    secrets.use_secret_client(lambda: FakeSecretManagerClient(values))
    yield values
    secrets.use_secret_client(None)


def test_webhook_url_from_secret_manager_is_resolved_once_per_process(secret_manager: dict) -> None:
    path = "projects/nba-prod/secrets/slack-webhook/versions/latest"
    secret_manager[path] = SLACK + "\n"
    cfg = {"sinks": [{"type": "webhook", "url": {"secret": path}}]}
    for _ in range(2):
        sink = alerts_from_config(cfg).sinks[0]
        assert isinstance(sink, WebhookSink) and sink.url == SLACK
    assert FakeSecretManagerClient.calls == [path]


def test_webhook_url_from_env_and_legacy_url_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PIPECTL_T_HOOK", SLACK)
    assert alerts_from_config({"sinks": [{"type": "webhook", "url": {"env": "PIPECTL_T_HOOK"}}]}).sinks[0].url == SLACK
    assert alerts_from_config({"sinks": [{"type": "webhook", "url_env": "PIPECTL_T_HOOK"}]}).sinks[0].url == SLACK


def test_errors_name_the_reference_never_the_value(secret_manager: dict, monkeypatch: pytest.MonkeyPatch) -> None:
    missing = "projects/nba-prod/secrets/nope/versions/3"
    with pytest.raises(ConfigError) as exc:
        alerts_from_config({"sinks": [{"type": "webhook", "url": {"secret": missing}}]})
    assert missing in str(exc.value) and "secretAccessor" in exc.value.render()
    with pytest.raises(ConfigError, match="is not projects/P/secrets/S/versions/V"):
        alerts_from_config({"sinks": [{"type": "webhook", "url": {"secret": "slack-webhook"}}]})
    # a malformed URL in a secret: the error says so without printing it
    monkeypatch.setenv("PIPECTL_T_HOOK", "hooks.slack.com/services/T000/B000/XXXXsecretXXXX")
    with pytest.raises(ConfigError) as exc:
        alerts_from_config({"sinks": [{"type": "webhook", "url": {"env": "PIPECTL_T_HOOK"}}]})
    assert "XXXXsecretXXXX" not in exc.value.render() and "must start with http" in str(exc.value)


def test_webhook_failure_names_the_host_only() -> None:
    alerts = alerts_from_config({"sinks": [{"type": "webhook", "url": "http://127.0.0.1:9/services/T000/B000/XXXXsecretXXXX"}]})
    alerts.alert("x", "error", "boom")
    assert len(alerts.sink_errors) == 1
    assert "http://127.0.0.1/…" in alerts.sink_errors[0] and "XXXXsecretXXXX" not in alerts.sink_errors[0]


def test_missing_secret_manager_sdk_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    import builtins

    real_import = builtins.__import__

    def no_secretmanager(name, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003
        if name.startswith("google.cloud.secretmanager"):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    secrets.use_secret_client(None)
    monkeypatch.setattr(builtins, "__import__", no_secretmanager)
    with pytest.raises(Exception, match=r"google.cloud.secretmanager. is required.*\[gcp\]"):
        secrets.resolve({"secret": "projects/p/secrets/s/versions/latest"}, "x")


INLINE = """targets:
  gcp:
    project: nba-prod
    bus: {type: pubsub}
    state: {type: firestore}
alerts:
  sinks:
    - type: webhook
      url: %s
    - type: email
      host: smtp.example.com
      to: [oncall@example.com]
      username: alerts
      password: hunter2-inline
""" % SLACK


def test_validate_warns_on_inline_secrets_with_their_line(tmp_path: Path) -> None:
    project = copy_example(tmp_path / "p", pipectl_yaml=INLINE)
    result = CliRunner().invoke(main, ["-p", str(project), "validate", "--no-sql", "--format", "json"])
    items = [d for d in json.loads(result.output)["diagnostics"] if d["code"] == "inline-secret"]
    assert [(d["severity"], d["line"]) for d in items] == [("warning", 9), ("warning", 14)]
    assert "alerts.sinks[0].url" in items[0]["message"] and "alerts.sinks[1].password" in items[1]["message"]
    assert SLACK not in result.output and "hunter2-inline" not in result.output
    strict = CliRunner().invoke(main, ["-p", str(project), "validate", "--no-sql", "--strict"])
    assert strict.exit_code == 1


def test_package_refuses_an_inline_secret_and_accepts_references(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    project = copy_example(tmp_path / "p", pipectl_yaml=INLINE)
    assert pipectl(["-p", str(project), "package", "--out", str(tmp_path / "dist")]) == 1
    out = capsys.readouterr()
    text = out.out + out.err
    assert "refusing to package" in text and "pipectl.yaml:9" in text
    assert SLACK not in text and "hunter2-inline" not in text
    assert not (tmp_path / "dist" / "pipectl-function").exists()
    by_ref = INLINE.replace(SLACK, "{secret: projects/nba-prod/secrets/slack/versions/latest}").replace(
        "hunter2-inline", "{env: SMTP_PASSWORD}")
    (project / "pipectl.yaml").write_text(by_ref)
    assert pipectl(["-p", str(project), "package", "--out", str(tmp_path / "dist")]) == 0
    assert "projects/nba-prod/secrets/slack/versions/latest" in (tmp_path / "dist" / "pipectl-function" / "pipectl.yaml").read_text()
