"""The remote run's follower (framework.drive.remote) on the shop fixture, embedded backends.

What executes the processors here is a stand-in for the deployment: between two polls the
follower sleeps, and the stand-in plays the worker and the orchestrator function through the
local driver's phase-worker and orchestrator roles (the real runner, trigger records and
ledger). The follower itself only publishes and reads. The end-to-end version with a real
worker process on the emulators is tests/integration/gcp/test_remote_run.py.
"""
from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from framework.drive.driver_state import RunContext
from framework.drive.pipeline import PipelineDriver
from framework.drive.remote import RemoteRun, follow
from framework.drive.reports import PipelineReport
from framework.project import load
from tests.projects import PROCESSORS, START_TOPIC, TOPICS, write_project

DAY = "2026-01-15"


class Deployment:
    """The worker and the orchestrator function, one step per follower sleep."""

    def __init__(self, tmp_path: Path, processors: str = PROCESSORS, rows: int = 12):
        from framework.backends.duckdb import DuckDBWarehouse
        from framework.backends.localbus import LocalBus
        from framework.backends.sqlite_state import SQLiteStateStore

        self.project = load(write_project(tmp_path / "shop", processors=processors, topics=TOPICS + START_TOPIC))
        self.wh = DuckDBWarehouse(":memory:")
        self.wh.create_dataset("landing")
        self.wh.create_table(self.project.sources["orders_landing"].table)
        self.wh.insert_rows("landing.orders", [dict(day=dt.date.fromisoformat(DAY), customer_id=f"c{i}", store_id=f"s{i % 3}",
                                                    amount=float(i)) for i in range(rows)])
        self.bus = LocalBus(tmp_path / "bus.sqlite")
        self.store = SQLiteStateStore(tmp_path / "ledger.sqlite")
        self.driver = PipelineDriver(self.project, self.wh, self.bus, self.store)
        self.steps = 0
        self.running = True

    def step(self, seconds: float) -> None:
        """What the deployment does while the follower waits ``seconds``."""
        self.steps += 1
        if not self.running:
            return
        ctx = RunContext(DAY, None, self.project.phase_names(), None, False, "incremental", True)
        report = PipelineReport(DAY, "deployment", "incremental")
        self.driver._pump_triggers(ctx, report)  # noqa: SLF001 - the phase worker's role
        self.driver._pump_completions(ctx)  # noqa: SLF001 - the orchestrator function's role

    def remote(self, **kwargs) -> RemoteRun:
        return RemoteRun(self.project, self.bus, self.store, self.driver.orchestrator, DAY, **kwargs)

    def close(self) -> None:
        self.bus.close()
        self.store.close()
        self.wh.close()


@pytest.fixture
def deployment(tmp_path):
    dep = Deployment(tmp_path)
    yield dep
    dep.close()


def test_a_day_is_followed_to_its_end(deployment) -> None:
    events = []
    run = deployment.remote(progress=lambda e, d: events.append((e, d)), fast_forward=True)
    (report,) = follow([run], timeout=600, poll_seconds=0.0, sleep=deployment.step)
    assert report.status == "success", report.to_dict()
    assert [(p.phase, p.done) for p in report.phases] == [("raw", True), ("analytics", True)]
    assert {n: r.status for p in report.phases for n, r in p.runs.items()} == {
        "orders_raw": "success", "customer_totals": "success", "store_totals": "success"}
    assert report.phases[1].trigger_id.startswith("trg-")  # the orchestrator's trigger, not ours
    kinds = [e for e, _ in events]
    assert kinds[0] == "start" and kinds[-1] == "end" and kinds.count("processor_done") == 3
    assert deployment.wh.query("SELECT COUNT(*) AS n FROM shop_analytics.store_totals")[0]["n"] == 3
    assert "trace: pipectl trace " + report.correlation_id in report.text()

    # again, nothing changed: raw runs and finds nothing, analytics is dispatched nothing
    (again,) = follow([deployment.remote(fast_forward=True)], timeout=600, poll_seconds=0.0, sleep=deployment.step)
    assert again.status == "success", again.to_dict()
    assert again.phases[1].expected == [] and again.phases[1].note == "nothing to run: no input of this phase changed"
    assert again.phases[1].runs == {}


def test_a_blocked_gate_ends_the_run_with_the_reason(tmp_path) -> None:
    text = PROCESSORS.replace("      deadline: 2h\n", "      deadline: 2h\n      quality_gates:\n"
                              "        - {name: enough_orders, processor: orders_raw, min_rows: 100}\n")
    dep = Deployment(tmp_path, processors=text)
    try:
        (report,) = follow([dep.remote(fast_forward=True)], timeout=600, poll_seconds=0.0, sleep=dep.step)
        assert report.status == "blocked" and not report.ok
        assert any("phase analytics never triggered" in w and "enough_orders" in w for w in report.waiting), report.waiting
    finally:
        dep.close()


def test_nobody_consumes_the_trigger_times_out_naming_the_phase(deployment) -> None:
    deployment.running = False
    clock = iter(range(0, 10_000, 10))
    (report,) = follow([deployment.remote()], timeout=60, poll_seconds=0.0, sleep=deployment.step, clock=lambda: next(clock))
    assert report.status == "timeout" and not report.ok
    assert report.waiting[0] == "phase raw: no trigger received yet"


class FakeRun:
    """The interface follow() drives; ends after three polls."""

    def __init__(self, name: str, log: list):
        self.name, self.log, self.polls, self.finished = name, log, 0, False
        self.report = type("R", (), {"partition": name})()

    def start(self) -> None:
        self.log.append(("start", self.name))

    def poll(self) -> bool:
        self.polls += 1
        if self.polls == 3:
            self.finished = True
            self.log.append(("end", self.name))
        return False

    def give_up(self, timeout: float) -> None:  # pragma: no cover - never reached here
        raise AssertionError("timed out")


def test_partitions_in_flight_are_bounded() -> None:
    log: list = []
    runs = [FakeRun(d, log) for d in ("d1", "d2", "d3", "d4", "d5")]
    reports = follow(runs, concurrency=2, timeout=600, poll_seconds=0.0, sleep=lambda s: None)
    assert [r.partition for r in reports] == ["d1", "d2", "d3", "d4", "d5"]
    in_flight, most = 0, 0
    for kind, _ in log:
        in_flight += 1 if kind == "start" else -1
        most = max(most, in_flight)
    assert most == 2 and log[:2] == [("start", "d1"), ("start", "d2")]


@pytest.mark.parametrize("args, flag", [(["--full"], "--full"), (["--select", "orders_raw"], "--select"),
                                        (["--entities", "customer_id=c1"], "--entities")])
def test_options_a_remote_run_cannot_honour_are_usage_errors(tmp_path, capsys, args, flag) -> None:
    from framework.cli import main

    root = write_project(tmp_path / "shop", topics=TOPICS + START_TOPIC)
    (root / "pipectl.yaml").write_text("targets:\n  gcp:\n    project: p\n    execution: remote\n    warehouse: {type: bigquery}\n"
                                       "    bus: {type: pubsub}\n    state: {type: firestore}\n    worker: {url: 'https://w'}\n")
    assert main(["-p", str(root), "-t", "gcp", "run", "--date", DAY, *args]) == 2
    err = capsys.readouterr().err
    assert f"{flag} cannot be used with `execution: remote`" in err and "execution: local" in err


def test_bus_setup_refuses_a_remote_target(tmp_path, capsys) -> None:
    """`bus setup` knows topics.yaml only: on a remote target it would turn push back to pull."""
    from framework.cli import main

    root = write_project(tmp_path / "shop", topics=TOPICS + START_TOPIC)
    (root / "pipectl.yaml").write_text("targets:\n  gcp:\n    project: p\n    execution: remote\n    warehouse: {type: bigquery}\n"
                                       "    bus: {type: pubsub}\n    state: {type: firestore}\n    worker: {url: 'https://w'}\n")
    assert main(["-p", str(root), "-t", "gcp", "bus", "setup"]) == 1
    assert "executes remotely" in capsys.readouterr().err
