"""The pipeline driver on the small shop fixture: phases triggered over the local bus by the
orchestrator, duplicate triggers dropped, update rounds carry one entity, trace tree."""
from __future__ import annotations

import datetime as dt

import pytest

from framework.project import load
from framework.drive.pipeline import PipelineDriver
from framework.drive.trace import build_trace, render_tree
from tests.projects import START_TOPIC, TOPICS, write_project

DAY = "2026-01-15"

# the shop's raw phase gets a scraper trigger topic (the first phase is triggered externally)
TOPICS_WITH_START = TOPICS + START_TOPIC


@pytest.fixture
def driver(tmp_path):
    from framework.backends.duckdb import DuckDBWarehouse
    from framework.backends.localbus import LocalBus
    from framework.backends.sqlite_state import SQLiteStateStore

    project = load(write_project(tmp_path / "shop", topics=TOPICS_WITH_START))
    wh = DuckDBWarehouse(":memory:")
    wh.create_dataset("landing")
    wh.create_table(project.sources["orders_landing"].table)
    wh.insert_rows("landing.orders", [dict(day=dt.date.fromisoformat(DAY), customer_id=f"c{i}", store_id=f"s{i % 3}",
                                           amount=float(i)) for i in range(30)])
    bus = LocalBus(tmp_path / "bus.sqlite")
    store = SQLiteStateStore(tmp_path / "ledger.sqlite")
    events: list[tuple[str, dict]] = []
    drv = PipelineDriver(project, wh, bus, store, progress=lambda e, d: events.append((e, d)))
    yield drv, wh, events
    bus.close()
    store.close()
    wh.close()


def test_full_run_goes_through_both_phases_via_the_orchestrator(driver) -> None:
    drv, wh, events = driver
    rep = drv.run(DAY, full=True)
    assert rep.status == "success", rep.to_dict()
    assert [p.phase for p in rep.phases] == ["raw", "analytics"]
    assert rep.phase("analytics").trigger_id and rep.phase("analytics").trigger_id.startswith("trg-")
    kinds = rep.phase("analytics").distinct_entities()
    assert len(kinds["customer"]) == 30 and kinds["store"] == ["s0", "s1", "s2"]
    assert [e for e, _ in events][:2] == ["start", "phase_start"] and events[-1][0] == "end"
    assert wh.query("SELECT COUNT(*) AS n FROM shop_analytics.store_totals")[0]["n"] == 3


def test_update_round_processes_one_customer_and_its_store(driver) -> None:
    drv, wh, _ = driver
    drv.run(DAY, full=True)
    wh.query("UPDATE landing.orders SET amount = 100 WHERE customer_id = 'c4'")
    rep = drv.run(DAY)
    assert rep.status == "success"
    assert rep.phase("raw").distinct_entities() == {"customer": ["c4"]}
    assert rep.phase("analytics").distinct_entities() == {"customer": ["c4"], "store": ["s1"]}
    tree = render_tree(build_trace(drv.project, drv.store, rep.correlation_id))
    assert "trigger pipectl:run -> raw" in tree and "trigger orchestrator:raw -> analytics (customer: 1, round 2)" in tree
    assert "run store_totals [analytics] success 1 store" in tree


def test_a_redelivered_trigger_is_dropped(driver) -> None:
    from framework.orchestrator.envelope import encode, make_envelope

    drv, wh, _ = driver
    first = drv.run(DAY, full=True)
    tid = first.phase("analytics").trigger_id
    dup = make_envelope(kind="trigger", processor_name="orchestrator:raw", phase="analytics", partition=DAY,
                        status="success", trigger_id=tid, round=1)
    drv.bus.publish("shop-analytics-trigger", encode(dup), {"trigger_id": tid})
    again = drv.run(DAY)  # nothing changed upstream; the redelivered trigger must not rerun analytics
    analytics = again.phase("analytics")  # round 2 fired with nothing dispatched; the duplicate ran nothing
    assert analytics is None or (analytics.trigger_id != tid and analytics.runs == [])
    assert all(r.status == "no_data" for r in again.phase("raw").runs)


def test_select_and_from_phase(driver) -> None:
    drv, wh, _ = driver
    drv.run(DAY, full=True)
    rep = drv.run(DAY, select=["customer_totals"], from_phase="analytics", entities=["c1"])
    assert [p.phase for p in rep.phases] == ["analytics"]
    assert [r.processor for r in rep.phases[0].runs] == ["customer_totals"]
    assert rep.phases[0].runs[0].entity_ids == ["c1"] and rep.mode == "replay"


def test_deselected_processors_report_no_data_so_the_transition_fires(driver) -> None:
    drv, wh, _ = driver
    rep = drv.run(DAY, select=["orders_raw", "store_totals"], full=True)
    assert rep.status == "success" and [p.phase for p in rep.phases] == ["raw", "analytics"]
    assert [r.processor for r in rep.phase("analytics").runs] == ["store_totals"]
    assert wh.query("SELECT COUNT(*) AS n FROM shop_analytics.customer_totals")[0]["n"] == 0


def test_a_failing_quality_gate_blocks_loudly_without_crashing_the_driver(tmp_path) -> None:
    from framework.backends.duckdb import DuckDBWarehouse
    from framework.backends.localbus import LocalBus
    from framework.backends.sqlite_state import SQLiteStateStore
    from framework.alerts import Alerts, MemorySink
    from tests.projects import PROCESSORS

    text = PROCESSORS.replace("      deadline: 2h\n", "      deadline: 2h\n      quality_gates:\n"
                              "        - {name: enough_orders, processor: orders_raw, min_rows: 100}\n")
    project = load(write_project(tmp_path / "shop", processors=text, topics=TOPICS_WITH_START.replace(
        "    consumers: [phase:raw]\n    subscriptions:", "    consumers: [phase:raw]\n    dead_letter_topic: shop-dead-letter\n    subscriptions:")))
    with DuckDBWarehouse(":memory:") as wh:
        wh.create_dataset("landing")
        wh.create_table(project.sources["orders_landing"].table)
        wh.insert_rows("landing.orders", [dict(day=dt.date.fromisoformat(DAY), customer_id="c1", store_id="s1", amount=1.0)])
        bus, store, sink = LocalBus(tmp_path / "b.sqlite"), SQLiteStateStore(tmp_path / "l.sqlite"), MemorySink()
        rep = PipelineDriver(project, wh, bus, store, alerts=Alerts([sink])).run(DAY, full=True)
        bus.close()
        store.close()
    assert rep.status == "failed" and [p.phase for p in rep.phases] == ["raw"]
    assert any("enough_orders" in w and "needs at least 100" in w for w in rep.waiting), rep.waiting
    assert sink.sent, "the blocked gate must alert"


def test_a_phase_worker_crash_unclaims_the_trigger_so_redelivery_runs_it(driver, monkeypatch) -> None:
    drv, wh, _ = driver

    def crash(*args, **kwargs):
        raise KeyboardInterrupt("worker killed")

    monkeypatch.setattr(drv, "_run_phase", crash)
    with pytest.raises(KeyboardInterrupt):
        drv.run(DAY, full=True)
    monkeypatch.undo()
    # the nacked start trigger is on the bus again, and its id is not marked as seen
    import json

    msgs = drv.bus.pull("shop-raw-trigger-sub", max_messages=10)
    assert len(msgs) == 1 and msgs[0].delivery_attempt == 2
    assert drv.dedup.first_time(json.loads(msgs[0].data)["trigger_id"])


def test_another_partitions_trigger_is_not_dropped_silently(driver, caplog) -> None:
    """A trigger left on the bus for another date is not this command's work, but dropping it
    without a word lost that date's phase: it is logged with the command that runs it."""
    import logging

    from framework.orchestrator.envelope import encode, make_envelope

    drv, wh, events = driver
    env = make_envelope(kind="trigger", processor_name="orchestrator:raw", phase="analytics", partition="2026-01-14",
                        status="success", trigger_id="left-over", round=1)
    drv.bus.publish("shop-analytics-trigger", encode(env), {"trigger_id": "left-over"})
    with caplog.at_level(logging.WARNING, logger="framework.drive.pipeline"):
        drv.run(DAY, full=True)
    assert "pipectl run --date 2026-01-14 --from-phase analytics" in caplog.text
    assert ("foreign_trigger", {"phase": "analytics", "trigger_id": "left-over", "partition": "2026-01-14"}) in events


def test_an_orphan_subscription_on_a_managed_topic_is_alerted(tmp_path) -> None:
    """FM 18: ensure_topology found orphans but the driver dropped its report: nobody heard."""
    from framework.backends.localbus import LocalBus
    from framework.backends.protocols import SubscriptionConfig
    from framework.backends.sqlite_state import SQLiteStateStore
    from framework.backends.duckdb import DuckDBWarehouse
    from framework.alerts import Alerts, MemorySink
    from framework.drive.bus_setup import ensure_topology

    project = load(write_project(tmp_path / "shop", topics=TOPICS_WITH_START))
    bus = LocalBus(tmp_path / "bus.sqlite")
    ensure_topology(bus, project)
    bus.create_subscription(SubscriptionConfig("shop-raw-complete-old-orch", "shop-raw-complete"))
    store = SQLiteStateStore(tmp_path / "ledger.sqlite")
    sink = MemorySink()
    with DuckDBWarehouse(":memory:") as wh:
        PipelineDriver(project, wh, bus, store, alerts=Alerts([sink]))
    assert [a.signature for a in sink.sent] == ["orphan_subscriptions"]
    assert "shop-raw-complete-old-orch" in sink.sent[0].message
    bus.close()
    store.close()


def test_a_run_with_a_skipped_processor_is_not_reported_as_success(driver) -> None:
    """A processor skipped because another live run holds its claim did not run for this
    command: the pipeline report must not say 'success'."""
    drv, wh, _ = driver
    drv.runner.history.start("customer_totals", DAY, run_id="other-live-run")
    rep = drv.run(DAY, full=True)
    runs = {r.processor: r for p in rep.phases for r in p.runs}
    assert runs["customer_totals"].status == "skipped" and "other-live-run" in runs["customer_totals"].error
    assert rep.status == "skipped"


def test_an_invalid_trigger_is_dead_lettered_and_the_run_goes_on(driver) -> None:
    """FM 5: a trigger missing required fields raised out of the driver, crashing this run and
    every next one until the bus gave up on it. It now goes to the dead-letter topic."""
    from framework.backends.protocols import SubscriptionConfig

    drv, wh, events = driver
    drv.bus.create_subscription(SubscriptionConfig("dlq-inspect", "shop-dead-letter"))
    drv.bus.publish("shop-analytics-trigger", b'{"kind": "trigger", "phase": "analytics"}', {"trigger_id": "bad"})
    rep = drv.run(DAY, full=True)
    assert rep.status == "success"
    kept = drv.bus.pull("dlq-inspect", max_messages=10)
    assert [m.data for m in kept] == [b'{"kind": "trigger", "phase": "analytics"}']
    assert kept[0].attributes["rejected_from"] == "shop-analytics-trigger-sub"
    assert any(e == "rejected_trigger" and "shop-dead-letter" in d["error"] for e, d in events)


def test_a_trigger_naming_its_changed_sources_skips_the_rest_without_a_query(driver, monkeypatch) -> None:
    from framework.run.runner import UNCHANGED_INPUTS

    drv, wh, _ = driver
    assert drv.run(DAY, full=True).status == "success"
    queries: list[str] = []
    real = wh.query
    monkeypatch.setattr(wh, "query", lambda sql, *a, **k: (queries.append(sql), real(sql, *a, **k))[1])
    quiet = drv.run(DAY, sources_changed=[])  # the scraper says nothing landed
    assert quiet.summary == "nothing changed since the last run", quiet.to_dict()
    assert {r.fallback_reason for ph in quiet.phases for r in ph.runs} == {UNCHANGED_INPUTS}
    assert not [q for q in queries if "change detection" in q]
    real("UPDATE landing.orders SET amount = 99.0 WHERE customer_id = 'c4'")
    rep = drv.run(DAY, sources_changed=["orders_landing"])
    runs = {r.processor: r for ph in rep.phases for r in ph.runs}
    assert runs["orders_raw"].entity_ids == ["c4"] and runs["customer_totals"].entity_ids == ["c4"]
    assert runs["store_totals"].entity_ids == ["s1"]
    assert real("SELECT total FROM shop_analytics.customer_totals WHERE customer_id = 'c4'")[0]["total"] == 99.0
    from framework.errors import ConfigError

    with pytest.raises(ConfigError, match="orders_landing"):  # did you mean
        drv.run(DAY, sources_changed=["orders_landin"])
