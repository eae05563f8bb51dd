"""Operating the Cloud Function on the emulators: a blocked quality gate is acknowledged (not
redelivered) and re-checked by the sweep; a poison message is listed by `pipectl bus
dead-letters` on Pub/Sub with its reason and replayed once after the fix; a delivery that
failed until Pub/Sub dead-lettered it shows its first error.

The function runs in process here (``framework.deploy.function``, what ``main.py`` calls);
the functions-framework path is covered by test_function_e2e.py and test_sweep_function.py.
"""
from __future__ import annotations

import base64
import json
import logging
import time
import zlib
from pathlib import Path

import pytest
from click.testing import CliRunner

from framework.backends.bigquery import BigQueryWarehouse
from framework.backends.firestore import FirestoreStateStore
from framework.backends.protocols import SubscriptionConfig, TopicConfig
from framework.backends.pubsub import PubSubBus
from framework.cli import cli
from framework.deploy import function
from framework.project import load
from framework.orchestrator import encode, make_envelope
from framework.orchestrator import ledger as lg
from framework.plan.resources import inspect_subscription
from framework.drive.dead_letters import record_delivery_error
from projects import copy_example


def _example(dest: Path, uid: str, gcp_project: str) -> Path:
    return copy_example(dest, templates=True, pipectl_yaml=(
        f"targets:\n  gcp:\n    project: {gcp_project}\n    warehouse: {{type: bigquery, timeout: 60}}\n"
        f"    bus: {{type: pubsub}}\n    state: {{type: firestore, prefix: {uid}_}}\n"))


def _event(env_or_bytes, topic: str, gcp_project: str, event_id: str = "evt") -> dict:
    data = env_or_bytes if isinstance(env_or_bytes, bytes) else encode(env_or_bytes)
    return {"id": event_id, "source": f"//pubsub.googleapis.com/projects/{gcp_project}/topics/{topic}",
            "data": {"message": {"data": base64.b64encode(data).decode(), "attributes": {}}}}


def _date(uid: str, salt: str) -> str:
    h = zlib.crc32((uid + salt).encode())
    return f"20{40 + h % 50}-{1 + h % 9:02d}-{10 + h % 18:02d}"


@pytest.fixture
def in_process(tmp_path: Path, uid: str, monkeypatch: pytest.MonkeyPatch):
    gcp_project = f"ops-{uid}"
    root = _example(tmp_path / "project", uid, gcp_project)
    monkeypatch.setenv("PIPECTL_TARGET", "gcp")
    function.configure(root)
    yield root, gcp_project
    function.reset()


def test_gate_failure_is_acknowledged_with_an_alert_and_the_sweep_rechecks_the_gate(in_process, uid: str, caplog) -> None:
    root, gcp_project = in_process
    project = load(root)
    raw = project.phase("raw").transition
    date = _date(uid, "gate")
    bus = PubSubBus(gcp_project)
    bus.create_topic(TopicConfig(raw.trigger_topic))
    bus.create_subscription(SubscriptionConfig(f"{uid}-obs", raw.trigger_topic, ack_deadline_seconds=30))
    try:
        results = []
        with caplog.at_level(logging.WARNING, logger="pipectl.alerts"):
            for i, name in enumerate(raw.expected):
                kind = project.resolve_processor(name).entity
                env = make_envelope(kind="completion", processor_name=name, phase="raw", partition=date, partition_column="game_date",
                                    status="success", record_count=1, correlation_id=f"{uid}-c", entities_changed={kind: [f"e{i}"]})
                results.append(function.handle_completion(_event(env, raw.completion_topic, gcp_project)))  # never raises
        assert results[-1]["action"] == "gate_failed" and "gamebook_has_rows" in results[-1]["reason"]
        assert any("orchestrator_quality_gate" in r.getMessage() for r in caplog.records)  # alerted, rate limited
        ledger = function.orchestrator().store.get(lg.LEDGER, f"{raw.name}|{date}")
        assert ledger["active"] and ledger["open_round"] == 1  # blocked, waiting for the sweep
        assert bus.pull(f"{uid}-obs") == []

        # the upstream data gets fixed: the next scheduled sweep re-checks the gate and fires
        proc = project.resolve_processor("nbac_gamebook_player_stats")
        wh = BigQueryWarehouse(gcp_project, timeout=60)
        try:
            wh.create_dataset(proc.output.dataset)
            wh.create_table(proc.output)
            filler = {"STRING": "x", "INT64": 1, "FLOAT64": 1.0, "BOOL": True, "DATE": date}
            wh.insert_rows(proc.output.fqn, [{**{c.name: filler.get(c.type) for c in proc.output.columns},
                                              "game_date": date, "player_lookup": f"p{i}"} for i in range(120)])
        finally:
            wh.close()
        report = function.handle_sweep(None)
        assert report["gate_failures"] == [] and len(report["published"]) == 1
        got = []
        deadline = time.monotonic() + 20
        while not got and time.monotonic() < deadline:
            got = bus.pull(f"{uid}-obs")
        assert [json.loads(m.data)["trigger_id"] for m in got] == report["published"]
    finally:
        bus.close()


def test_poison_message_is_listed_on_pubsub_with_its_reason_and_replayed_once_after_the_fix(
        in_process, uid: str, monkeypatch: pytest.MonkeyPatch) -> None:
    root, gcp_project = in_process
    project = load(root)
    raw = project.phase("raw").transition
    dlq = project.topics[raw.completion_topic].dead_letter_topic
    monkeypatch.setenv("PIPECTL_REJECT_TOPIC", dlq)
    bus = PubSubBus(gcp_project)
    for topic in (raw.completion_topic, dlq):
        bus.create_topic(TopicConfig(topic))
    bus.create_subscription(SubscriptionConfig(inspect_subscription(dlq), dlq, ack_deadline_seconds=60))  # what apply creates
    bus.create_subscription(SubscriptionConfig(f"{uid}-completions", raw.completion_topic, ack_deadline_seconds=60))
    date = _date(uid, "poison")
    # a scraper team renamed its processor: the orchestrator cannot place the completion
    poison = make_envelope(kind="completion", processor_name="NbacGamebookPdfProcessorV2", phase="raw", partition=date,
                           partition_column="game_date", status="success", record_count=3, correlation_id=f"{uid}-p")
    try:
        assert function.handle_completion(_event(poison, raw.completion_topic, gcp_project))["action"] == "rejected"
        run = lambda *args: CliRunner().invoke(cli, ["-p", str(root), "--target", "gcp", *args], catch_exceptions=False)  # noqa: E731
        listed = run("bus", "dead-letters", "--topic", dlq)
        assert listed.exit_code == 0, listed.output
        assert f"{dlq}: [" in listed.output and "rejected by orchestrator" in listed.output
        assert "NbacGamebookPdfProcessorV2" in listed.output and "1 dead letter(s)" in listed.output
        [letter] = json.loads(run("bus", "dead-letters", "--topic", dlq, "--json").stdout)  # listing leaves it in place
        assert letter["source_topic"] == raw.completion_topic and letter["attributes"]["rejected_by"] == "orchestrator"

        # the fix: declare the legacy name as an alias, redeploy (reload the function)
        text = (root / "processors.yaml").read_text().replace(
            "aliases: [NbacGamebookProcessor, nbac_gamebook]", "aliases: [NbacGamebookProcessor, nbac_gamebook, NbacGamebookPdfProcessorV2]", 1)
        assert "NbacGamebookPdfProcessorV2]" in text
        (root / "processors.yaml").write_text(text)
        function.reset()
        function.configure(root)

        replayed = run("bus", "replay-dead-letters", "--id", letter["id"])
        assert "1 dead letter(s) replayed" in replayed.output, replayed.output
        again = run("bus", "replay-dead-letters", "--topic", dlq)
        assert "0 dead letter(s) replayed" in again.output
        assert "0 dead letter(s)" in run("bus", "dead-letters", "--topic", dlq).output
        got, deadline = [], time.monotonic() + 20
        while not got and time.monotonic() < deadline:
            got = bus.pull(f"{uid}-completions")
        assert len(got) == 1 and json.loads(got[0].data)["processor_name"] == "NbacGamebookPdfProcessorV2"
        assert got[0].attributes["pipectl_replay_of"] == f"{dlq}/{letter['message_id']}" and "rejected_by" not in got[0].attributes
        decision = function.handle_completion(_event(got[0].data, raw.completion_topic, gcp_project))
        assert (decision["action"], decision["processor"]) == ("recorded", "nbac_gamebook_player_stats")
        assert bus.pull(f"{uid}-completions") == []  # exactly once
    finally:
        bus.close()


def test_delivery_dead_lettered_by_pubsub_shows_its_first_error(tmp_path: Path, uid: str) -> None:
    """A consumer that fails every delivery (the function records why before raising):
    Pub/Sub forwards the message after 5 attempts; the listing shows the delivery count and
    the first recorded error."""
    gcp_project = f"dl-{uid}"
    root = _example(tmp_path / "project", uid, gcp_project)
    project = load(root)
    raw = project.phase("raw").transition
    dlq = project.topics[raw.completion_topic].dead_letter_topic
    bus, store = PubSubBus(gcp_project), FirestoreStateStore(gcp_project, prefix=f"{uid}_")
    sub = f"{uid}-orch"
    try:
        for topic in (raw.completion_topic, dlq):
            bus.create_topic(TopicConfig(topic))
        bus.create_subscription(SubscriptionConfig(inspect_subscription(dlq), dlq, ack_deadline_seconds=60))
        bus.create_subscription(SubscriptionConfig(sub, raw.completion_topic, ack_deadline_seconds=10, max_delivery_attempts=5,
                                                   dead_letter_topic=dlq))
        bus.publish(raw.completion_topic, b'{"status": "success"}', {"processor": "x"})
        for attempt in range(1, 8):
            msgs = bus.pull(sub)
            if not msgs:
                time.sleep(0.5)
                continue
            record_delivery_error(store, msgs[0].data, f"BackendError: BigQuery unreachable (attempt {attempt})", topic=raw.completion_topic)
            bus.nack(sub, [msgs[0].ack_id])
        bus.pull(sub)  # the emulator forwards to the dead-letter topic on the next pull
        out = CliRunner().invoke(cli, ["-p", str(root), "--target", "gcp", "bus", "dead-letters", "--topic", dlq, "--json"], catch_exceptions=False)
        letters = [x for x in json.loads(out.stdout) if x["dead_letter_topic"] == dlq]
        assert len(letters) == 1, out.output
        assert "first error: BackendError: BigQuery unreachable (attempt 1)" in letters[0]["reason"]
        assert letters[0]["source_topic"] == raw.completion_topic
        assert letters[0]["delivery_attempt"] in (None, 5)
    finally:
        bus.close()
        store.close()


def test_a_failing_delivery_records_its_error_then_raises_for_redelivery(in_process, uid: str) -> None:
    """The trigger topic does not exist: publishing fails, the function records why (for
    `bus dead-letters`, should Pub/Sub give up on the message) and raises so it is redelivered."""
    from framework.errors import BackendError
    from framework.drive.dead_letters import DELIVERY_ERRORS, payload_key

    root, gcp_project = in_process
    project = load(root)
    pred = project.phase("predictions").transition
    env = make_envelope(kind="completion", processor_name="player_prop_predictions", phase="predictions",
                        partition=_date(uid, "fail"), partition_column="game_date", status="success", record_count=1,
                        correlation_id=f"{uid}-f", entities_changed={"player": ["p1"]})
    event = _event(env, pred.completion_topic, gcp_project)
    for _ in range(2):
        with pytest.raises(BackendError, match="publishing trigger"):
            function.handle_completion(event)
    doc = function.orchestrator().store.get(DELIVERY_ERRORS, payload_key(encode(env)))
    assert doc["failures"] == 2  # recorded once per failed delivery (by the orchestrator: the function does not repeat it)
    assert "publishing trigger" in doc["first_error"] and pred.trigger_topic in doc["first_error"]
