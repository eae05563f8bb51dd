"""`pipectl status` and `pipectl sweep` on the embedded target (.pipectl/ under the project)."""
from __future__ import annotations

import json
import time

import pytest
from click.testing import CliRunner

from orch_support import DAY, FakeBus, completion, write_project
from framework.backends.protocols import SubscriptionConfig, TopicConfig
from framework.backends.sqlite_state import SQLiteStateStore
from framework.cli import cli
from framework.orchestrator import Orchestrator, decode
from framework.alerts import MemorySink
from framework.config.paths import bus_path, ledger_path


@pytest.fixture
def project_dir(tmp_path, monkeypatch):
    project = write_project(tmp_path, {"deadline": "1h"})
    import framework.project

    monkeypatch.setattr(framework.project, "load", lambda root=".": project)  # fixture skips topic wiring rules
    store = SQLiteStateStore(ledger_path(tmp_path))
    orch = Orchestrator(project, store, FakeBus(), alerts=MemorySink(), clock=lambda: time.time() - 7200)
    for n in ["r1", "r2"]:
        orch.handle_completion(completion(n, execution_id=f"e-{n}"))
    store.close()
    return tmp_path


def run(*args):
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.stdout  # JSON and text on stdout; log and alert lines go to stderr


def test_status_text_and_json(project_dir):
    text = run("-p", str(project_dir), "status", "--date", DAY)
    assert "raw->analytics" in text and "2/5 complete" in text and "missing: r3, r4, r5" in text
    doc = json.loads(run("-p", str(project_dir), "status", "--json"))
    (row,) = doc["transitions"]
    assert row["missing"] == ["r3", "r4", "r5"] and row["state"] == "open" and row["trigger_id"] is None
    assert json.loads(run("-p", str(project_dir), "status", "--date", "1999-01-01", "--json")) == {"transitions": [], "problems": []}


def test_sweep_fires_the_expired_deadline_and_publishes_on_the_local_bus(project_dir):
    from framework.backends.localbus import LocalBus

    bus = LocalBus(bus_path(project_dir))
    bus.create_topic(TopicConfig("analytics-trigger"))
    bus.create_subscription(SubscriptionConfig("analytics-sub", "analytics-trigger"))
    doc = json.loads(run("-p", str(project_dir), "sweep", "--json"))
    (d,) = doc["decisions"]
    assert d["action"] == "triggered" and "deadline" in d["reason"] and d["published"] == [d["trigger_id"]]
    (msg,) = bus.pull("analytics-sub")
    env = decode(msg.data)
    assert env["trigger_id"] == d["trigger_id"] and env["metadata"]["missing"] == ["r3", "r4", "r5"]
    assert "nothing open" in run("-p", str(project_dir), "sweep")
    bus.close()


def test_status_check_exits_1_on_problems(project_dir):
    ok = CliRunner().invoke(cli, ["-p", str(project_dir), "status", "--check", "--grace", "7200"])
    assert ok.exit_code == 0, ok.output  # waiting (within the grace) is not a problem
    # the 1h deadline passed an hour ago and no sweep evaluated the round: the scheduler is missing
    due = CliRunner().invoke(cli, ["-p", str(project_dir), "status", "--check"])
    assert due.exit_code == 1 and "sweep_due" in due.output and "`pipectl sweep" in due.output, due.output
    store = SQLiteStateStore(ledger_path(project_dir))
    from framework.orchestrator.ledger import LEDGER
    key, doc = store.query(LEDGER)[0]
    doc["rounds"]["1"]["verdict"] = "expired"
    store.run_transaction(lambda txn: txn.set(LEDGER, key, doc))
    bad = CliRunner().invoke(cli, ["-p", str(project_dir), "status", "--check"])
    assert bad.exit_code == 1 and "expired" in bad.output


def test_sweep_exits_1_when_a_trigger_cannot_be_published(project_dir):
    """A scheduler runs `pipectl sweep` and watches its exit code: a trigger that stays
    pending because its topic is missing must not look like a clean pass."""
    result = CliRunner().invoke(cli, ["-p", str(project_dir), "sweep"], catch_exceptions=False)
    assert result.exit_code == 1, result.output
    assert "publish_failed" in result.output and "analytics-trigger" in result.output
    result = CliRunner().invoke(cli, ["-p", str(project_dir), "sweep", "--json"], catch_exceptions=False)
    assert result.exit_code == 1
    (d,) = json.loads(result.stdout)["decisions"]
    assert d["action"] == "publish_failed"
