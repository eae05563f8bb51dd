"""The worker app on the embedded backends: a full example day pushed through its routes
(in process, see push_pump.py) equals `pipectl run`; duplicates, failures and poison
messages get the status codes Pub/Sub needs; OIDC is enforced unless explicitly off."""
from __future__ import annotations

import base64
import json
import warnings
from pathlib import Path
from types import SimpleNamespace

import pytest

from framework.errors import ConfigError
from framework.run.fanout_remote import RUNS
from framework.drive.session import Session, default_sample_date, run_partition, sample_module
from framework.worker.push import Authenticator
from framework.worker.service import WorkerService
from projects import copy_example, snapshot_tables, table_differences
from push_pump import PushPump, push_body, task_replies

PLAYERS = 5  # 150 players: the raw gate's 100 gamebook rows pass, 109 prediction tasks


def _client(app):
    with warnings.catch_warnings():  # starlette's TestClient warns when it finds httpx rather than httpx2
        warnings.simplefilter("ignore")
        from starlette.testclient import TestClient
    return TestClient(app)


def _project(root: Path) -> tuple[Path, str]:
    copy_example(root, templates=True)
    with Session.open(root) as s:
        date = default_sample_date(s.project)
        sample_module(s.project, "generate")(s.warehouse, date, days=1, seed=42, players_per_team=PLAYERS)
    return root, date


def _first_trigger(service: WorkerService, date: str, trigger_id: str = "t-scrapers-1") -> None:
    from framework.orchestrator.envelope import encode, make_envelope

    env = make_envelope(kind="trigger", processor_name="scheduler", phase="raw", partition_column="game_date",
                        execution_id="sched-1", correlation_id="corr-worker", partition=date, status="success",
                        record_count=0, duration_seconds=0.0, trigger_id=trigger_id, round=1,
                        metadata={"mode": "incremental", "source": "scheduler"})
    topic = next(t.name for t in service.project.topics.values() if t.contract == "trigger" and "phase:raw" in t.consumers)
    service.session.backends.bus.publish(topic, encode(env), {"trigger_id": trigger_id, "partition": date})


@pytest.fixture
def worker(tmp_path: Path):
    from framework.orchestrator.engine import Orchestrator
    from framework.drive.bus_setup import ensure_topology
    from framework.worker.app import create_app

    root, date = _project(tmp_path / "worker")
    service = WorkerService.open(root)
    ensure_topology(service.session.backends.bus, service.project)
    app = create_app(service, Authenticator(None, disabled=True))
    from framework.orchestrator.gates import count_partition_rows

    def gate_rows(gate, partition: str) -> int:  # the function counts them in the target's warehouse
        with service.runner.lock:
            return count_partition_rows(service.session.warehouse, service.project, gate.processor, partition)

    orch = Orchestrator(service.project, service.store, service.session.backends.bus, alerts=service.alerts,
                        gate_checker=gate_rows)
    with _client(app) as client:
        yield service, client, PushPump(service.project, service.session.backends.bus, client, orch), date, root
    service.close()


def test_a_day_pushed_through_the_worker_equals_pipectl_run(worker, tmp_path: Path) -> None:
    service, client, pump, date, _ = worker
    _first_trigger(service, date)
    pump.run()
    runs = [r for r in service.runner.history.list(partition=date, limit=None)]
    by_proc: dict[str, list[str]] = {}
    for r in runs:
        by_proc.setdefault(r.processor, []).append(r.status)
    enabled = [p.name for p in service.project.processors.values() if p.enabled]
    assert {p: s for p, s in by_proc.items() if s != ["success"]} == {}
    assert sorted(by_proc) == sorted(enabled)  # each processor ran (and completed) exactly once
    fanned = service.project.processors["player_prop_predictions"]
    tasks = [b for b in task_replies(pump) if b["outcome"] == "done"]
    assert len(tasks) == len({b["entity"] for b in tasks}) > 0
    assert [b.get("finished") for b in task_replies(pump) if b.get("finished")] == ["success"]
    done_run = next(r for r in runs if r.processor == fanned.name)
    assert done_run.metadata["fanout_tasks"] == len(tasks)
    assert service.store.get(RUNS, done_run.run_id)["state"] == "finished"
    assert service.store.query("pipectl_fanout_tasks", {"run_id": done_run.run_id}) == []
    worker_tables = snapshot_tables(service.session)

    ref_root, _ = _project(tmp_path / "reference")
    with Session.open(ref_root) as ref:
        report = run_partition(ref, date)
        assert report.status == "success"
        assert table_differences(worker_tables, snapshot_tables(ref)) == []

    # the whole day again: every trigger is a duplicate, nothing runs twice
    before = len(service.runner.history.list(partition=date, limit=None))
    _first_trigger(service, date)
    pump.run()
    assert pump.outcomes("/trigger")[-1] == "duplicate"
    assert len(service.runner.history.list(partition=date, limit=None)) == before


def test_an_update_through_the_worker_skips_and_takes_change_sets_as_a_local_run_does(worker, tmp_path: Path,
                                                                                     monkeypatch) -> None:
    """After the day ran through the worker, a one-player edit whose trigger names the edited
    source: downstream processors take the raw run's entity list (no detection query reaches
    DuckDB for them), the others are skipped without a query, and the tables equal a full
    run of the edited day."""
    from framework.orchestrator.envelope import encode, make_envelope
    from tests.recording import detections, record_statements

    service, client, pump, date, root = worker
    _first_trigger(service, date)
    pump.run()
    wh = service.session.warehouse
    player = wh.query("SELECT player_lookup FROM nba_raw.nbac_gamebook_player_stats WHERE minutes > 0 "
                      "ORDER BY points DESC, player_lookup LIMIT 1")[0]["player_lookup"]
    sample_module(service.project, "apply_update")(wh, date, player, points=44)
    with record_statements(monkeypatch, wh) as sent:  # the worker holds its connection open: record on it too
        env = make_envelope(kind="trigger", processor_name="scheduler", phase="raw", partition_column="game_date",
                            execution_id="sched-2", correlation_id="corr-update", partition=date, status="success",
                            record_count=0, duration_seconds=0.0, trigger_id="t-update-1", round=1,
                            metadata={"mode": "incremental", "source": "scheduler", "sources_changed": ["landing_gamebook"]})
        topic = next(t.name for t in service.project.topics.values() if t.contract == "trigger" and "phase:raw" in t.consumers)
        service.session.backends.bus.publish(topic, encode(env), {"trigger_id": "t-update-1", "partition": date})
        pump.run()
    assert sent, "no statement was recorded"
    runs = [r for r in service.runner.history.list(partition=date, limit=None) if r.correlation_id == "corr-update"]
    status = {r.processor: (r.status, r.fallback_reason) for r in runs}
    assert status["nbac_gamebook_player_stats"][0] == "success"
    assert status["nbac_schedule"] == ("no_data", "inputs unchanged since the last run (no query)")
    assert status["player_game_summary"] == ("success", None)
    detected = set(detections(sent))
    assert "nbac_gamebook_player_stats" in detected and "nbac_schedule" not in detected
    assert "player_game_summary" not in detected and "player_shot_zone_analysis" not in detected
    worker_tables = snapshot_tables(service.session)
    ref_root, _ = _project(tmp_path / "reference-update")
    with Session.open(ref_root) as ref:
        sample_module(ref.project, "apply_update")(ref.warehouse, date, player, points=44)
        assert run_partition(ref, date, full=True, mode="full").status == "success"
        assert table_differences(worker_tables, snapshot_tables(ref)) == []


def test_a_failing_task_is_retried_then_recorded_failed_and_the_run_is_partial(worker, monkeypatch) -> None:
    from framework.run import runner_io

    service, client, pump, date, _ = worker
    real = runner_io.transform_and_write
    bad = "lebronjames"

    def flaky(warehouse, project, proc, partition, ids, run_id, **kwargs):
        if ids is not None and list(ids) == [bad]:
            raise RuntimeError("model exploded")
        return real(warehouse, project, proc, partition, ids, run_id, **kwargs)

    monkeypatch.setattr(runner_io, "transform_and_write", flaky)
    _first_trigger(service, date)
    pump.run()
    mine = [(code, b) for p, code, b in pump.replies if p == "/task" and b.get("entity") == bad]
    if not mine:
        pytest.skip(f"{bad} has no prediction task with {PLAYERS} players per team")
    limit = service.project.processors["player_prop_predictions"].fanout.max_attempts
    assert [code for code, _ in mine] == [500] * (limit - 1) + [200]  # redelivered until the last attempt
    assert [b["attempt"] for _, b in mine] == list(range(1, limit + 1))
    run = next(r for r in service.runner.history.list(partition=date, limit=None) if r.processor == "player_prop_predictions")
    assert run.status == "partial" and bad in run.error
    assert list(run.metadata["failed_entities"]) == [bad]


def test_a_task_dead_lettered_by_the_bus_fails_at_once_and_the_run_finishes_partial(tmp_path: Path) -> None:
    """Every delivery of one task kills its instance (it claims an attempt, then never
    answers): the bus dead-letters it after the subscription's 5 deliveries, pipectl's
    subscription of the dead-letter topic pushes it to /task-dead-letter, the task is
    recorded failed with the reason, alerted, and the run finishes `partial` naming the
    entity (the rest of the phase runs), without waiting for the run to go stale. A second
    delivery of the dead letter, and a late delivery of the task, change nothing."""
    from framework.alerts.alert_log import recent_alerts
    from framework.backends.protocols import SubscriptionConfig
    from framework.drive.bus_setup import ensure_topology
    from framework.orchestrator.engine import Orchestrator
    from framework.run.fanout import TASKS, TaskTracker
    from framework.worker.app import create_app

    root, date = _project(tmp_path / "dead")
    service = WorkerService.open(root)
    bus = service.session.backends.bus
    ensure_topology(bus, service.project)
    task_sub = next(s for s in service.project.topics["nba-prediction-requests"].subscriptions)
    dlq = task_sub.dead_letter_topic
    bus.create_subscription(SubscriptionConfig(f"{dlq}-pipectl-worker", dlq, ack_deadline_seconds=60))
    orch = Orchestrator(service.project, service.store, bus, alerts=service.alerts, gate_checker=lambda gate, part: 1000)
    with _client(create_app(service, Authenticator(None, disabled=True))) as client:
        pump = PushPump(service.project, bus, client, orch)
        crashed: list[int] = []
        victim: list[str] = []

        def crash(path: str, msg) -> bool:
            if path != "/task":
                return False
            task = json.loads(msg.data)
            if not victim:  # the last task published: its every delivery dies, the others end before it
                victim.append(max(d["entity"] for _, d in service.store.query(TASKS, {"run_id": task["run_id"]})))
            if task["entity"] != victim[0]:
                return False
            TaskTracker(service.store, task["run_id"]).claim_attempt(task["entity"], msg.delivery_attempt)  # then died
            crashed.append(msg.delivery_attempt)
            return True

        pump.crash = crash
        _first_trigger(service, date)
        pump.run()
        bad = victim[0]
        assert crashed == list(range(1, task_sub.max_delivery_attempts + 1))
        (dead,) = [(code, b) for p, code, b in pump.replies if p == "/task-dead-letter"]
        assert dead[0] == 200 and (dead[1]["outcome"], dead[1]["entity"], dead[1].get("finished")) == ("failed", bad, "partial")
        assert [b["finished"] for p, _, b in pump.replies if b.get("finished")] == ["partial"]  # finished once, by it
        runs = service.runner.history.list(partition=date, limit=None)
        run = next(r for r in runs if r.processor == "player_prop_predictions")
        assert run.status == "partial" and bad in run.error
        reason = run.metadata["failed_entities"][bad]
        assert list(run.metadata["failed_entities"]) == [bad]
        assert reason.startswith(f"dead-lettered: {task_sub.max_delivery_attempts} delivery attempts exhausted on "
                                 f"{task_sub.name} without a recorded outcome")
        assert "the last one left 'running'" in reason
        assert service.store.get(RUNS, run.run_id)["state"] == "finished"
        assert [r.status for r in runs if r.processor == "export_predictions"] == ["success"]  # the rest of the phase ran
        alerts = [a for a in recent_alerts(service.store) if a.get("signature") == "fanout_dead_letter:player_prop_predictions"]
        assert len(alerts) == 1 and bad in alerts[0]["message"]
        status = {s.transition: s for s in orch.status(date)}
        assert any("player_prop_predictions" in s.partial for s in status.values())

        # exactly once: the dead letter pushed again, a late delivery of the task itself
        letter = push_body(type("M", (), {"data": json.dumps({"run_id": run.run_id, "entity": bad}).encode(),
                                          "attributes": {"CloudPubSubDeadLetterSourceDeliveryCount": "5", "run_id": run.run_id},
                                          "message_id": "again", "delivery_attempt": 1})(), f"{dlq}-pipectl-worker")
        assert client.post("/task-dead-letter", json=letter).json()["outcome"] == "duplicate"
        assert client.post("/task", json=letter).json()["outcome"] == "duplicate"
        assert len(service.runner.history.list(partition=date, limit=None)) == len(runs)
        assert len([a for a in recent_alerts(service.store) if a.get("signature", "").startswith("fanout_dead_letter")]) == 1
        # a dead letter that is not a task (a shared dead-letter topic): acknowledged, nothing recorded
        other = {"message": {"data": base64.b64encode(b'{"status": "success"}').decode(), "messageId": "x"}}
        assert client.post("/task-dead-letter", json=other).json()["outcome"] == "not a task"
    service.close()


def test_malformed_deliveries_are_400_and_alerted(worker) -> None:
    service, client, _, _, _ = worker
    good_task = base64.b64encode(json.dumps({"run_id": "nope", "entity": "x"}).encode()).decode()
    cases = {
        "/trigger": [b"not json", json.dumps({"nomessage": 1}).encode(),
                     json.dumps({"message": {"data": "%%%"}}).encode(),
                     json.dumps({"message": {"data": base64.b64encode(b"{}").decode()}}).encode(),
                     json.dumps({"message": {"data": good_task}}).encode()],
        "/task": [json.dumps({"message": {"data": base64.b64encode(b"[1]").decode()}}).encode(),
                  json.dumps({"message": {"data": base64.b64encode(b'{"entity": "x"}').decode()}}).encode()],
    }
    for path, bodies in cases.items():
        for body in bodies:
            reply = client.post(path, content=body)
            assert reply.status_code == 400, (path, body, reply.text)
            assert reply.json()["outcome"] == "rejected"
    # a task of a run nobody dispatched here (a late duplicate, or a local coordinator's): acked
    reply = client.post("/task", content=json.dumps({"message": {"data": good_task}}).encode())
    assert (reply.status_code, reply.json()["outcome"]) == (200, "duplicate")
    health = client.get("/healthz").json()
    assert health["handled"]["trigger:rejected"] == 5 and health["handled"]["task:rejected"] == 2
    from framework.alerts.alert_log import recent_alerts

    signatures = {a.get("signature") for a in recent_alerts(service.store)}
    assert {"worker_rejected:trigger", "worker_rejected:task"} <= signatures, signatures


def test_a_trigger_running_elsewhere_is_503_and_a_stale_claim_is_taken_over(worker) -> None:
    service, client, pump, date, _ = worker
    from framework.orchestrator.envelope import encode, make_envelope

    env = make_envelope(kind="trigger", processor_name="orchestrator:precompute", phase="export", partition_column="game_date",
                        execution_id="x", correlation_id="c", partition=date, status="success", record_count=0,
                        duration_seconds=0.0, trigger_id="trg-export-1", round=1, metadata={"expected": []})
    body = {"message": {"data": base64.b64encode(encode(env)).decode(), "messageId": "m1"},
            "subscription": "projects/local/subscriptions/x"}
    service.claims.claim("trg-export-1")  # another instance holds it
    assert client.post("/trigger", json=body).status_code == 503
    service.claims.lease = 0.0  # its holder died: the lease ran out
    reply = client.post("/trigger", json=body)
    assert (reply.status_code, reply.json()["outcome"], reply.json()["runs"]) == (200, "ran", [])
    assert client.post("/trigger", json=body).json()["outcome"] == "duplicate"


def test_oidc_is_required_unless_explicitly_off(worker) -> None:
    from framework.worker.app import create_app

    service = worker[0]
    with pytest.raises(ConfigError, match="PIPECTL_WORKER_AUDIENCE"):
        Authenticator.from_env({})
    with pytest.raises(ConfigError, match="no OIDC audience"):  # a URL without an account: tokens are not sent
        Authenticator.from_env({}, worker=SimpleNamespace(url="https://w.run.app", service_account=None))
    from_target = Authenticator.from_env({}, worker=SimpleNamespace(url="https://w.run.app/", service_account="sa@p.iam"))
    assert (from_target.audience, from_target.invokers, from_target.disabled) == ("https://w.run.app", ("sa@p.iam",), False)
    assert Authenticator.from_env({"PUBSUB_EMULATOR_HOST": "127.0.0.1:8085"}).disabled  # the emulator sends no token
    assert not Authenticator.from_env({"PUBSUB_EMULATOR_HOST": "h:1", "PIPECTL_WORKER_AUTH": "oidc",
                                       "PIPECTL_WORKER_AUDIENCE": "https://w"}).disabled
    with pytest.raises(ConfigError, match="say which"):
        Authenticator.from_env({"PIPECTL_WORKER_AUTH": "none", "PIPECTL_WORKER_AUDIENCE": "https://w"})
    assert Authenticator.from_env({"PIPECTL_WORKER_AUTH": "none"}).disabled

    seen = []

    def verifier(token: str, audience: str) -> dict:
        seen.append((token, audience))
        if token == "forged":
            raise ValueError("Could not verify token signature.")
        return {"email": "pusher@p.iam.gserviceaccount.com" if token == "good" else "other@x.com", "email_verified": True}

    auth = Authenticator.from_env({"PIPECTL_WORKER_AUDIENCE": "https://worker.run.app",
                                   "PIPECTL_WORKER_INVOKERS": "pusher@p.iam.gserviceaccount.com"}, verifier)
    body = push_body(type("M", (), {"data": b"[1]", "attributes": {}, "message_id": "m", "delivery_attempt": 1})(), "s")
    with _client(create_app(service, auth)) as client:
        assert client.post("/task", json=body).status_code == 401
        assert client.post("/task", json=body, headers={"Authorization": "Bearer forged"}).status_code == 401
        assert client.post("/task", json=body, headers={"Authorization": "Bearer someone"}).status_code == 403
        # a verified invoker reaches the handler (which rejects this body as not a task)
        assert client.post("/task", json=body, headers={"Authorization": "Bearer good"}).status_code == 400
        assert client.get("/healthz").status_code == 200
    assert {aud for _, aud in seen} == {"https://worker.run.app"}


def test_the_rest_of_the_phase_runs_again_when_it_failed_after_the_fan_out_finished(worker) -> None:
    """The instance ending the last task finishes the run, then runs the rest of the phase;
    if that fails (a backend down), the delivery fails and its redelivery runs it again."""
    service, client, pump, date, _ = worker
    calls = []
    real = service._continue

    def flaky(doc, finished):
        calls.append(finished is not None)
        if len(calls) == 1:
            raise ConnectionError("bus unreachable")
        real(doc, finished)

    service._continue = flaky
    _first_trigger(service, date)
    pump.run()
    assert calls == [True, False]  # after the finish, then again on the redelivered last task
    errors = [(code, b) for p, code, b in pump.replies if p == "/task" and code == 500]
    assert [b["outcome"] for _, b in errors] == ["error"]
    run = next(r for r in service.runner.history.list(partition=date, limit=None) if r.processor == "player_prop_predictions")
    assert run.status == "success"
    assert service.store.get(RUNS, run.run_id)["continuation_state"] == "done"
    assert len([r for r in service.runner.history.list(partition=date, limit=None) if r.processor == "export_predictions"]) == 1
