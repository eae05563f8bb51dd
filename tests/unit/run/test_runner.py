"""The processor runner on DuckDB with a small fixture project: selective runs, deletes,
no_data skips, critical inputs (FM 23), failures after the write (FM 17), Python transforms."""
from __future__ import annotations

import datetime as dt
import json

import pytest

from framework.backends.protocols import QueryParam
from framework.project import load
from framework.run.runner import ProcessorRunner, RunRequest
from tests.projects import PROCESSORS, write_project

DAY = "2026-01-15"


def _rows(wh, table: str) -> list[tuple]:
    return [tuple(r.values()) for r in wh.query(f"SELECT * FROM {table} ORDER BY ALL")]


@pytest.fixture
def env(tmp_path, memory_store):
    from framework.backends.duckdb import DuckDBWarehouse
    from framework.backends.localbus import LocalBus
    from framework.drive.bus_setup import ensure_topology

    text = PROCESSORS.replace("      - source: orders_landing\n", "      - {source: orders_landing, critical: true}\n")
    root = write_project(tmp_path / "shop", processors=text)
    project = load(root)
    wh = DuckDBWarehouse(":memory:")
    wh.create_dataset("landing")
    wh.create_table(project.sources["orders_landing"].table)
    bus = LocalBus(tmp_path / "bus.sqlite")
    ensure_topology(bus, project)
    runner = ProcessorRunner(project, wh, bus=bus, store=memory_store)
    yield project, wh, bus, runner
    bus.close()
    wh.close()


def _insert(wh, rows):
    wh.insert_rows("landing.orders", [dict(day=dt.date.fromisoformat(DAY), customer_id=c, store_id=s, amount=a) for c, s, a in rows])


def _completions(bus) -> list[dict]:
    msgs = bus.pull("shop-raw-complete-orch", max_messages=100)
    bus.ack("shop-raw-complete-orch", [m.ack_id for m in msgs])
    return [json.loads(m.data) for m in msgs]


def test_first_run_then_only_the_changed_entity(env) -> None:
    project, wh, bus, runner = env
    _insert(wh, [("c1", "s1", 10.0), ("c2", "s1", 5.0), ("c3", "s2", 7.0)])
    first = runner.run(RunRequest("orders_raw", DAY, correlation_id="root1"))
    assert first.status == "success" and first.record_count == 3 and first.entities_processed == 3
    assert len(_rows(wh, "shop_raw.orders_raw")) == 3
    wh.query("UPDATE landing.orders SET amount = 11.0 WHERE customer_id = 'c1'")
    second = runner.run(RunRequest("orders_raw", DAY, correlation_id="root2", parent_id="exec9", trigger_id="t9"))
    assert (second.status, second.entity_ids, second.entities_total) == ("success", ["c1"], 3)
    assert second.efficiency_pct == pytest.approx(66.67)
    assert ("c1", 11.0) in [(r[1], r[3]) for r in _rows(wh, "shop_raw.orders_raw")]
    envs = _completions(bus)
    assert [e["status"] for e in envs] == ["success", "success"]
    assert envs[0]["entities_changed"] == {"customer": ["c1", "c2", "c3"]}
    last = envs[1]
    assert last["entities_changed"] == {"customer": ["c1"]} and last["record_count"] == 1
    assert (last["correlation_id"], last["parent_execution_id"], last["trigger_id"]) == ("root2", "exec9", "t9")
    assert last["partition"] == DAY and last["output_table"] == "orders_raw"
    run = runner.history.get(second.run_id)
    assert (run.status, run.entities_processed, run.rows_written, run.parent_id) == ("success", 1, 1, "exec9")


def test_nothing_changed_is_no_data_with_full_efficiency(env) -> None:
    project, wh, bus, runner = env
    _insert(wh, [("c1", "s1", 10.0)])
    runner.run(RunRequest("orders_raw", DAY))
    again = runner.run(RunRequest("orders_raw", DAY))
    assert (again.status, again.efficiency_pct, again.entities_processed) == ("no_data", 100.0, 0)
    assert _completions(bus)[-1]["entities_changed"] == {}


def test_deleted_entity_disappears_downstream(env) -> None:
    project, wh, bus, runner = env
    _insert(wh, [("c1", "s1", 10.0), ("c2", "s1", 5.0), ("c2", "s1", 1.0)])
    for name in ("orders_raw", "customer_totals", "store_totals"):
        runner.run(RunRequest(name, DAY))
    assert [r[1:] for r in _rows(wh, "shop_analytics.customer_totals")] == [("c1", 10.0), ("c2", 6.0)]
    wh.query("DELETE FROM landing.orders WHERE customer_id = 'c2'")
    results = [runner.run(RunRequest(n, DAY)) for n in ("orders_raw", "customer_totals", "store_totals")]
    assert [r.entity_ids for r in results] == [["c2"], ["c2"], ["s1"]]
    assert [r[1:] for r in _rows(wh, "shop_analytics.customer_totals")] == [("c1", 10.0)]
    assert [r[1:] for r in _rows(wh, "shop_analytics.store_totals")] == [("s1", 10.0)]


def test_zero_upstream_rows_fails_loudly_and_publishes_failed(env) -> None:
    from framework.alerts import Alerts, MemorySink

    project, wh, bus, runner = env
    sink = MemorySink()
    runner.alerts = Alerts([sink])
    res = runner.run(RunRequest("orders_raw", DAY, full=True))
    assert res.status == "failed" and "critical input(s) have no rows: orders_landing (landing.orders)" in res.error
    assert _completions(bus)[0]["status"] == "failed"
    assert sink.sent[0].signature == "processor_failed:orders_raw"
    assert runner.history.get(res.run_id).status == "failed"
    assert wh.query("SELECT COUNT(*) AS n FROM shop_raw.orders_raw")[0]["n"] == 0


def test_failure_after_the_write_is_a_failed_run_with_a_failed_completion(env, monkeypatch) -> None:
    from framework.run import messages

    project, wh, bus, runner = env
    _insert(wh, [("c1", "s1", 10.0)])

    def boom(res):
        return {"not_serializable": object()}

    monkeypatch.setattr(messages, "completion_metadata", boom)
    res = runner.run(RunRequest("orders_raw", DAY))
    assert res.status == "failed" and "cannot be serialized" in res.error and "rows were written" in res.error
    env_ = _completions(bus)
    assert len(env_) == 1 and env_[0]["status"] == "failed" and env_[0]["error_message"] == res.error
    assert runner.history.get(res.run_id).status == "failed"
    assert len(_rows(wh, "shop_raw.orders_raw")) == 1  # written, and the run says so


def test_explicit_entities_replay_without_detection(env) -> None:
    project, wh, bus, runner = env
    _insert(wh, [("c1", "s1", 10.0), ("c2", "s1", 5.0)])
    runner.run(RunRequest("orders_raw", DAY))
    res = runner.run(RunRequest("orders_raw", DAY, entities=["c2"], mode="replay"))
    assert (res.status, res.entity_ids, res.record_count) == ("success", ["c2"], 1)


def test_live_run_of_same_processor_and_partition_is_skipped(env) -> None:
    project, wh, bus, runner = env
    _insert(wh, [("c1", "s1", 10.0)])
    runner.history.start("orders_raw", DAY)
    res = runner.run(RunRequest("orders_raw", DAY))
    assert res.status == "skipped" and "already running" in res.error


def test_python_transform_writes_through_a_stage_table(env, tmp_path) -> None:
    from dataclasses import replace

    from framework.manifest.model import Transform

    project, wh, bus, runner = env
    mod = project.root / "shop_py.py"
    mod.write_text("def totals(ctx):\n"
                   "    sql = f\"SELECT day, customer_id, SUM(amount) * 2 AS total FROM {ctx.ref('orders_raw')} o \"\n"
                   "    sql += f\"WHERE o.day = {ctx.partition_placeholder} AND {ctx.entity_filter('o.customer_id')} GROUP BY ALL\"\n"
                   "    return ctx.query(sql)\n")
    procs = dict(project.processors)
    procs["customer_totals"] = replace(procs["customer_totals"], transform=Transform(python="shop_py:totals"))
    runner.project = project = replace(project, processors=procs)
    _insert(wh, [("c1", "s1", 10.0), ("c2", "s1", 5.0)])
    runner.run(RunRequest("orders_raw", DAY))
    res = runner.run(RunRequest("customer_totals", DAY))
    assert res.status == "success" and res.record_count == 2
    wh.query("UPDATE landing.orders SET amount = 1.0 WHERE customer_id = 'c2'")
    runner.run(RunRequest("orders_raw", DAY))
    res = runner.run(RunRequest("customer_totals", DAY))
    assert res.entity_ids == ["c2"]
    assert [r[1:] for r in _rows(wh, "shop_analytics.customer_totals")] == [("c1", 20.0), ("c2", 2.0)]
    assert wh.list_tables("_pipectl_stage") == []


def test_fanned_out_processor_completes_partial_naming_the_failed_entities(tmp_path, memory_store) -> None:
    from framework.backends.duckdb import DuckDBWarehouse
    from framework.backends.localbus import LocalBus
    from framework.drive.bus_setup import ensure_topology
    from tests.projects import TOPICS

    text = PROCESSORS.replace("    transform: {sql: sql/customer_totals.sql}\n",
                              "    transform: {python: \"shop_fan:totals\"}\n"
                              "    fanout: {task_topic: shop-tasks, workers: 2, max_attempts: 2}\n")
    topics = TOPICS + ("  - name: shop-tasks\n    contract: task\n    producers: [processor:customer_totals]\n"
                       "    consumers: [processor:customer_totals]\n    dead_letter_topic: shop-dead-letter\n"
                       "    subscriptions:\n      - {name: shop-tasks-workers, consumer: processor:customer_totals, max_delivery_attempts: 5}\n")
    root = write_project(tmp_path / "shop", processors=text, topics=topics)
    (root / "shop_fan.py").write_text(
        "def totals(ctx):\n"
        "    if ctx.entity_ids and 'c2' in ctx.entity_ids:\n"
        "        raise RuntimeError('model has no features for c2')\n"
        "    sql = f\"SELECT day, customer_id, SUM(amount) AS total FROM {ctx.ref('orders_raw')} o \"\n"
        "    sql += f\"WHERE o.day = {ctx.partition_placeholder} AND {ctx.entity_filter('o.customer_id')} GROUP BY ALL\"\n"
        "    return ctx.query(sql)\n")
    project = load(root)
    with DuckDBWarehouse(":memory:") as wh:
        wh.create_dataset("landing")
        wh.create_table(project.sources["orders_landing"].table)
        _insert(wh, [("c1", "s1", 1.0), ("c2", "s1", 2.0), ("c3", "s2", 3.0)])
        bus = LocalBus(tmp_path / "bus.sqlite")
        ensure_topology(bus, project)
        runner = ProcessorRunner(project, wh, bus=bus, store=memory_store)
        runner.run(RunRequest("orders_raw", DAY))
        res = runner.run(RunRequest("customer_totals", DAY, full=True))
        assert res.status == "partial" and set(res.failed_entities) == {"c2"}
        assert "model has no features for c2" in res.failed_entities["c2"] and "1 of 3 fan-out task(s) failed: c2" in res.error
        assert [r[1] for r in _rows(wh, "shop_analytics.customer_totals")] == ["c1", "c3"]
        msgs = bus.pull("shop-analytics-complete-orch", max_messages=10)
        env = json.loads(msgs[-1].data)
        assert env["status"] == "partial" and env["metadata"]["failed_entities"] == ["c2"]
        assert runner.history.get(res.run_id).metadata["failed_entities"]["c2"].startswith("RuntimeError")
        # c2 was not recorded as processed: the next run picks it up again
        again = runner.run(RunRequest("customer_totals", DAY))
        assert again.entity_ids == ["c2"] and again.status == "failed"
        bus.close()


def test_bus_down_run_is_recorded_failed_and_releases_its_claim(env) -> None:
    """FM 20: a completion that cannot be published at all (bus down) must not leave the run
    'running' holding its claim (every retry would be skipped as 'already running' until the
    claim went stale); the error propagates so the trigger is redelivered."""
    from framework.errors import BackendError

    project, wh, bus, runner = env
    _insert(wh, [("c1", "s1", 10.0)])

    class DownBus:
        def publish(self, topic, data, attributes=None):
            raise BackendError(f"publish to {topic} failed: bus down")

    runner.bus = DownBus()
    with pytest.raises(BackendError, match="bus down"):
        runner.run(RunRequest("orders_raw", DAY, run_id="run-down"))
    run = runner.history.get("run-down")
    assert run.status == "failed" and "bus down" in run.error
    runner.bus = bus
    retry = runner.run(RunRequest("orders_raw", DAY))
    assert retry.status == "success"


def test_retry_after_a_failure_after_the_write_reprocesses_the_entities(env, monkeypatch) -> None:
    """FM 17: the first run wrote and recorded c1, then its completion failed; the retry must
    process c1 again and publish it downstream, not detect 'no change' and publish no_data."""
    from framework.run import messages

    project, wh, bus, runner = env
    _insert(wh, [("c1", "s1", 10.0), ("c2", "s1", 5.0)])
    runner.run(RunRequest("orders_raw", DAY))
    wh.query("UPDATE landing.orders SET amount = 11.0 WHERE customer_id = 'c1'")
    real = messages.completion_metadata
    monkeypatch.setattr(messages, "completion_metadata", lambda res: {"not_serializable": object()})
    assert runner.run(RunRequest("orders_raw", DAY)).status == "failed"
    monkeypatch.setattr(messages, "completion_metadata", real)
    retry = runner.run(RunRequest("orders_raw", DAY))
    assert (retry.status, retry.entity_ids) == ("success", ["c1"])
    assert _completions(bus)[-1]["entities_changed"] == {"customer": ["c1"]}


def test_a_fanout_whose_workers_died_says_why_in_the_run_error(tmp_path, memory_store, monkeypatch) -> None:
    """Tasks left unfinished because every worker stopped were reported only as 'timed out in
    state pending': the workers' errors (the cause) must reach the run's error and history."""
    from framework.backends.duckdb import DuckDBWarehouse
    from framework.backends.localbus import LocalBus
    from framework.run import fanout
    from framework.drive.bus_setup import ensure_topology
    from tests.projects import TOPICS

    text = PROCESSORS.replace("    transform: {sql: sql/customer_totals.sql}\n",
                              "    transform: {sql: sql/customer_totals.sql}\n"
                              "    fanout: {task_topic: shop-tasks, workers: 1, max_attempts: 2}\n")
    topics = TOPICS + ("  - name: shop-tasks\n    contract: task\n    producers: [processor:customer_totals]\n"
                       "    consumers: [processor:customer_totals]\n    dead_letter_topic: shop-dead-letter\n"
                       "    subscriptions:\n      - {name: shop-tasks-workers, consumer: processor:customer_totals, max_delivery_attempts: 5}\n")
    project = load(write_project(tmp_path / "shop", processors=text, topics=topics))

    def broken_fanout(bus, store, **kw):
        res = fanout.FanOutResult(kw["run_id"], 2, timed_out=True, worker_errors=["worker 0: OSError: disk full"])
        res.failed = {e: "timed out in state 'pending' after 0 attempt(s)" for e in kw["entities"]}
        return res

    monkeypatch.setattr(fanout, "run_fanout", broken_fanout)
    with DuckDBWarehouse(":memory:") as wh:
        wh.create_dataset("landing")
        wh.create_table(project.sources["orders_landing"].table)
        _insert(wh, [("c1", "s1", 1.0), ("c2", "s1", 2.0)])
        bus = LocalBus(tmp_path / "bus.sqlite")
        ensure_topology(bus, project)
        runner = ProcessorRunner(project, wh, bus=bus, store=memory_store)
        runner.run(RunRequest("orders_raw", DAY))
        res = runner.run(RunRequest("customer_totals", DAY, full=True))
        assert res.status == "failed" and "worker 0: OSError: disk full" in res.error and "timeout" in res.error
        assert "disk full" in runner.history.get(res.run_id).error
        env = json.loads(bus.pull("shop-analytics-complete-orch", max_messages=10)[-1].data)
        assert env["status"] == "failed" and "disk full" in env["error_message"]
        bus.close()


def test_a_run_that_breaks_while_alerting_is_still_recorded_failed(env) -> None:
    """Whatever escapes the handled path (here the alerter itself) must not leave the run
    'running' holding its claim (FM 20): recorded failed, error propagated."""
    project, wh, bus, runner = env

    class BrokenAlerts:
        def alert(self, *args, **kwargs):
            raise RuntimeError("alerter down")

    runner.alerts = BrokenAlerts()
    with pytest.raises(RuntimeError, match="alerter down"):
        runner.run(RunRequest("orders_raw", DAY, full=True, run_id="run-alert"))  # no rows: critical input fails
    run = runner.history.get("run-alert")
    assert run.status == "failed" and "critical input" in run.error and "alerter down" in run.error


def test_fanout_retries_stop_at_the_task_subscriptions_delivery_limit(tmp_path, memory_store) -> None:
    """fanout.max_attempts 10 > the subscription's max_delivery_attempts 5: the bus dead-letters
    the task after 5 deliveries, so the 6th never comes; the task must end failed with its
    error at attempt 5, not sit 'retrying' until the fan-out timeout."""
    from framework.backends.duckdb import DuckDBWarehouse
    from framework.backends.localbus import LocalBus
    from framework.drive.bus_setup import ensure_topology
    from tests.projects import TOPICS

    text = PROCESSORS.replace("    transform: {sql: sql/customer_totals.sql}\n",
                              "    transform: {python: \"shop_boom:totals\"}\n"
                              "    fanout: {task_topic: shop-tasks, workers: 1, max_attempts: 10}\n")
    topics = TOPICS + ("  - name: shop-tasks\n    contract: task\n    producers: [processor:customer_totals]\n"
                       "    consumers: [processor:customer_totals]\n    dead_letter_topic: shop-dead-letter\n"
                       "    subscriptions:\n      - {name: shop-tasks-workers, consumer: processor:customer_totals, max_delivery_attempts: 5}\n")
    root = write_project(tmp_path / "shop", processors=text, topics=topics)
    (root / "shop_boom.py").write_text("def totals(ctx):\n    raise RuntimeError('no model for ' + ','.join(ctx.entity_ids or ()))\n")
    project = load(root)
    with DuckDBWarehouse(":memory:") as wh:
        wh.create_dataset("landing")
        wh.create_table(project.sources["orders_landing"].table)
        _insert(wh, [("c1", "s1", 1.0)])
        bus = LocalBus(tmp_path / "bus.sqlite")
        ensure_topology(bus, project)
        runner = ProcessorRunner(project, wh, bus=bus, store=memory_store, fanout_timeout=60)
        runner.run(RunRequest("orders_raw", DAY))
        res = runner.run(RunRequest("customer_totals", DAY, entities=["c1"]))
        assert res.status == "failed" and "no model for c1" in res.failed_entities["c1"], res.failed_entities
        assert not res.failed_entities["c1"].startswith("timed out") and "fan-out timeout" not in res.error
        bus.close()


def test_a_failure_between_recording_fingerprints_and_the_change_set_is_retried_exactly(env, monkeypatch) -> None:
    """record_processed succeeded, record_change_set failed: the run is failed, and its
    recorded fingerprints must be forgotten too, or the retry sees no change (no_data)."""
    from framework.run import changes

    project, wh, bus, runner = env
    _insert(wh, [("c1", "s1", 10.0), ("c2", "s1", 5.0)])
    runner.run(RunRequest("orders_raw", DAY))
    wh.query("UPDATE landing.orders SET amount = 12.0 WHERE customer_id = 'c2'")

    def broken(*args, **kwargs):
        raise RuntimeError("change_sets table unavailable")

    real = changes.record_change_set
    monkeypatch.setattr(changes, "record_change_set", broken)
    assert runner.run(RunRequest("orders_raw", DAY)).status == "failed"
    monkeypatch.setattr(changes, "record_change_set", real)
    retry = runner.run(RunRequest("orders_raw", DAY))
    assert (retry.status, retry.entity_ids) == ("success", ["c2"])


def test_a_quality_gate_on_a_processor_without_output_names_it_and_the_fix(env) -> None:
    from framework.errors import PipectlError
    from framework.run.runner import count_partition_rows

    project, wh, bus, runner = env
    with pytest.raises(PipectlError) as err:
        count_partition_rows(wh, project, "no_such_processor", DAY)
    assert "'no_such_processor', an unknown processor" in err.value.render()
    assert "quality_gates[].processor" in err.value.render()


def test_fanout_tasks_hold_the_warehouse_lock_only_on_a_serial_warehouse(tmp_path, memory_store, monkeypatch) -> None:
    """The runner's lock exists for the embedded DuckDB file's one connection; a warehouse
    that runs jobs server-side (``concurrent_jobs = True``: BigQuery) is not serialised, so
    fan-out workers overlap their jobs (bench/bench_fanout_gcp.py)."""
    from framework.backends.duckdb import DuckDBWarehouse
    from framework.backends.localbus import LocalBus
    from framework.run import runner_io
    from framework.drive.bus_setup import ensure_topology
    from tests.projects import TOPICS

    text = PROCESSORS.replace("    transform: {sql: sql/customer_totals.sql}\n",
                              "    transform: {sql: sql/customer_totals.sql}\n"
                              "    fanout: {task_topic: shop-tasks, workers: 1, max_attempts: 2}\n")
    topics = TOPICS + ("  - name: shop-tasks\n    contract: task\n    producers: [processor:customer_totals]\n"
                       "    consumers: [processor:customer_totals]\n    dead_letter_topic: shop-dead-letter\n"
                       "    subscriptions:\n      - {name: shop-tasks-workers, consumer: processor:customer_totals, max_delivery_attempts: 5}\n")
    project = load(write_project(tmp_path / "shop", processors=text, topics=topics))
    held: list[bool] = []
    real = runner_io.transform_and_write

    class ConcurrentDuckDB(DuckDBWarehouse):
        concurrent_jobs = True

    for cls, name in ((DuckDBWarehouse, "serial"), (ConcurrentDuckDB, "concurrent")):
        with cls(":memory:") as wh:
            wh.create_dataset("landing")
            wh.create_table(project.sources["orders_landing"].table)
            _insert(wh, [("c1", "s1", 1.0), ("c2", "s1", 2.0)])
            bus = LocalBus(tmp_path / f"bus-{name}.sqlite")
            ensure_topology(bus, project)
            runner = ProcessorRunner(project, wh, bus=bus, store=memory_store)

            def spy(*args, **kwargs):
                held.append(runner.lock._is_owned())
                return real(*args, **kwargs)

            monkeypatch.setattr(runner_io, "transform_and_write", spy)
            runner.run(RunRequest("orders_raw", DAY))
            held.clear()
            res = runner.run(RunRequest("customer_totals", DAY, full=True))
            monkeypatch.setattr(runner_io, "transform_and_write", real)
            assert res.status == "success", res.error
            assert held == [name == "serial"] * 2, (name, held)
            bus.close()
