"""``execution: local | remote`` and ``worker:`` in pipectl.yaml, and the worker's sizing from the manifests."""
from __future__ import annotations

import textwrap

import pytest

from framework.config import CONFIG_FILE, load_config
from framework.config.worker import (CLOUD_RUN_MAX_TIMEOUT, WorkerSettings, check_remote, consumer_timeout, push_delivery,
                                     sizing)
from framework.errors import ConfigError
from framework.project import load
from projects import write_project

REMOTE = """\
targets:
  local: {}
  gcp:
    project: p
    execution: remote
    warehouse: {type: bigquery}
    bus: {type: pubsub}
    state: {type: firestore}
    worker:
      url: ${WORKER_URL:-https://pipectl-worker-abc-uc.a.run.app}
      service_account: worker@p.iam.gserviceaccount.com
      max_instances: 20
      concurrency: 2
      memory: 4Gi
      cpu: 4
      timeout: 30m
      partitions: 3
    orchestrator: {url: "https://orch.example/run", service_account: orch@p.iam.gserviceaccount.com}
"""


def write(tmp_path, text: str):
    (tmp_path / CONFIG_FILE).write_text(textwrap.dedent(text), encoding="utf-8")
    return tmp_path


def test_execution_defaults_to_local(tmp_path):
    target = load_config(write(tmp_path, "targets:\n  local: {}\n")).target()
    assert target.execution == "local" and not target.remote and target.worker is None
    assert target.worker_settings() == WorkerSettings(location=target.location)


def test_remote_target_reads_worker_settings(tmp_path, monkeypatch):
    monkeypatch.delenv("WORKER_URL", raising=False)
    target = load_config(write(tmp_path, REMOTE)).target("gcp")
    assert target.remote
    w = target.worker
    assert (w.url, w.service_account, w.max_instances, w.concurrency, w.memory, w.cpu, w.timeout, w.partitions) == (
        "https://pipectl-worker-abc-uc.a.run.app", "worker@p.iam.gserviceaccount.com", 20, 2, "4Gi", "4", 1800, 3)
    assert w.endpoint("/trigger") == "https://pipectl-worker-abc-uc.a.run.app/trigger"
    assert str(w.location) == "pipectl.yaml:10:7"  # located: errors about the worker point here
    assert target.orchestrator.url == "https://orch.example/run"
    monkeypatch.setenv("WORKER_URL", "https://w2.run.app/")
    assert load_config(tmp_path).target("gcp").worker.endpoint("/task") == "https://w2.run.app/task"


def test_remote_on_embedded_backends_is_a_located_error(tmp_path):
    write(tmp_path, "targets:\n  local:\n    execution: remote\n")
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path)
    text = info.value.render()
    assert "pipectl.yaml:3:" in text and "execution: remote needs Google Cloud backends" in text
    assert "bus 'local'" in text and "warehouse 'duckdb'" in text and "state 'sqlite'" in text
    assert "execution: local" in text


def test_unknown_execution_and_worker_key_are_schema_errors(tmp_path):
    write(tmp_path, "targets:\n  gcp:\n    execution: cloud\n    worker: {urll: x}\n")
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path)
    text = info.value.render()
    assert "cloud" in text and "urll" in text


def test_worker_timeout_beyond_cloud_run_limit_is_refused(tmp_path):
    write(tmp_path, REMOTE.replace("timeout: 30m", "timeout: 2h"))
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path)
    assert "exceeds Cloud Run's 3600s request limit" in info.value.render()
    assert ":16:" in info.value.render()  # the timeout line


def test_missing_url_names_the_fix(tmp_path):
    target = load_config(write(tmp_path, REMOTE.replace("      url: ${WORKER_URL:-https://pipectl-worker-abc-uc.a.run.app}\n", ""))).target("gcp")
    with pytest.raises(ConfigError, match="worker.url is not set") as info:
        target.worker.endpoint("/trigger")
    assert "pipectl package --worker" in info.value.render()


# ----------------------------------------------------------------------- sizing
def _project(tmp_path, edit=None):
    root = write_project(tmp_path / "shop")
    if edit:
        text = (root / "processors.yaml").read_text()
        (root / "processors.yaml").write_text(edit(text))
    return load(root)


def test_request_timeout_derives_from_processor_timeouts(tmp_path):
    project = _project(tmp_path)
    size = sizing(project)
    by_phase = {}
    for p in project.processors.values():
        if p.enabled:
            by_phase[p.phase] = by_phase.get(p.phase, 0) + (60 if p.fanout else p.timeout_seconds)
    assert all(p.timeout_seconds == 600 for p in project.processors.values())  # the default: 10m
    assert size.phase_totals == by_phase
    assert size.request_timeout == min(CLOUD_RUN_MAX_TIMEOUT, max([600, *by_phase.values()]) + 60)
    assert size.too_long == ()
    assert sizing(project, WorkerSettings(timeout=900)).request_timeout == 900


def test_processor_beyond_the_request_limit_is_refused_on_remote(tmp_path):
    project = _project(tmp_path, lambda t: t.replace("  - name: orders_raw\n", "  - name: orders_raw\n    timeout: 2h\n", 1))
    assert project.processors["orders_raw"].timeout_seconds == 7200
    size = sizing(project)
    assert size.too_long == (("orders_raw", 7200),) and size.request_timeout == CLOUD_RUN_MAX_TIMEOUT
    with pytest.raises(ConfigError) as info:
        check_remote(project, "gcp", None)
    text = info.value.render()
    assert "processor 'orders_raw' declares timeout 2h, beyond Cloud Run's 60-minute request limit" in text
    assert "processors.yaml:" in text and "fanout:" in text


def test_worker_timeout_shorter_than_a_processor_is_refused(tmp_path):
    project = _project(tmp_path, lambda t: t.replace("  - name: orders_raw\n", "  - name: orders_raw\n    timeout: 20m\n", 1))
    with pytest.raises(ConfigError, match="shorter than processor 'orders_raw'"):
        check_remote(project, "gcp", WorkerSettings(timeout=600))
    assert check_remote(project, "gcp", WorkerSettings(timeout=1500)).request_timeout == 1500


def test_bad_processor_timeout_is_located(tmp_path):
    from framework.errors import ManifestError

    with pytest.raises(ManifestError) as info:
        _project(tmp_path, lambda t: t.replace("  - name: orders_raw\n", "  - name: orders_raw\n    timeout: soon\n", 1))
    assert "processors.yaml:" in info.value.render() and "timeout" in info.value.render()


@pytest.mark.parametrize("timeout, declared_ack, attempts, expect", [
    (120, 60, 5, (150, 5)),        # fits: the request plus 30 s
    (30, 300, 5, (300, 5)),        # a longer declared ack deadline is kept
    (600, 60, 5, (600, 6)),        # 630 s > 600: one redelivery while still running
    (3000, 60, 5, (600, 10)),      # 50 min (+30 s): redelivered at 600, 1200, ... 3000 s while running
    (3600, 60, 99, (600, 100)),    # capped at Pub/Sub's 100
])
def test_push_delivery_fits_the_timeout(timeout, declared_ack, attempts, expect):
    got = push_delivery(timeout, declared_ack, attempts)
    assert (got["ack_deadline_seconds"], got["max_delivery_attempts"]) == expect
    assert got["ack_deadline_seconds"] <= 600 and (got["retry_min_backoff_seconds"], got["retry_max_backoff_seconds"]) == (10, 600)


def test_consumer_timeout(tmp_path):
    project = _project(tmp_path)
    phase = next(iter(project.phases)).name
    assert consumer_timeout(project, f"phase:{phase}") == sizing(project).phase_totals[phase]
    assert consumer_timeout(project, "orchestrator:raw") is None
