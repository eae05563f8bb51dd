"""The deployed sweep path on the emulators: Cloud Scheduler tick -> sweep topic -> push ->
the bundle's ``handle_sweep`` served by functions-framework -> Firestore ledger -> Pub/Sub.

Cloud Scheduler itself has no emulator: the tests publish the tick the job is configured to
publish (``sweep_message``: the same data and attributes ``pipectl apply`` gives the job) to
the sweep topic, and a Pub/Sub push subscription delivers it to the function, as Eventarc
would. Completions are recorded by an in-process orchestrator on the same Firestore ledger
whose clock says they arrived hours ago (no test waits for a 4 h deadline).
"""
from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
import zlib
from pathlib import Path
from typing import Iterator

import pytest

from framework.backends.firestore import FirestoreStateStore
from framework.backends.protocols import SubscriptionConfig, TopicConfig
from framework.backends.pubsub import PubSubBus
from framework.deploy.package import build_bundle
from framework.project import load
from framework.orchestrator import Orchestrator, encode, make_envelope
from framework.orchestrator import ledger as lg
from framework.alerts import MemorySink
from framework.plan.resources import sweep_message
from projects import copy_example

TIMEOUT = 120.0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _without_gates(text: str) -> str:
    return re.sub(r"\n\s+quality_gates:\n\s+- \{[^}]*\}", "", text)


def serve(bundle_path: Path, target: str, log_path: Path) -> tuple[subprocess.Popen, int]:
    """The bundle exactly as Cloud Functions would load it, serving one entry point."""
    port = _free_port()
    env = {**os.environ, "PYTHONPATH": str(bundle_path), "PIPECTL_TARGET": "gcp"}
    env.pop("PIPECTL_PROJECT_DIR", None)
    with open(log_path, "wb") as log:
        proc = subprocess.Popen([sys.executable, "-m", "functions_framework", "--source", "main.py", "--target", target,
                                 "--signature-type", "cloudevent", "--host", "127.0.0.1", "--port", str(port)],
                                cwd=bundle_path, env=env, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 60
    while True:
        if proc.poll() is not None:
            pytest.fail(f"functions-framework exited with {proc.returncode}:\n{log_path.read_text()[-3000:]}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return proc, port
        except OSError:
            if time.monotonic() > deadline:
                proc.kill()
                pytest.fail(f"functions-framework did not listen on {port}:\n{log_path.read_text()[-3000:]}")
            time.sleep(0.2)


@pytest.fixture
def sweep_function(tmp_path: Path, uid: str) -> Iterator[dict]:
    gcp_project = f"sweep-{uid}"
    root = copy_example(tmp_path / "project", templates=True, pipectl_yaml=(
        f"targets:\n  gcp:\n    project: {gcp_project}\n    warehouse: {{type: bigquery, timeout: 60}}\n"
        f"    bus: {{type: pubsub}}\n    state: {{type: firestore, prefix: {uid}_}}\n"))
    (root / "processors.yaml").write_text(_without_gates((root / "processors.yaml").read_text()))
    project = load(root)
    bundle = build_bundle(root, tmp_path / "dist")
    bus, store = PubSubBus(gcp_project), FirestoreStateStore(gcp_project, prefix=f"{uid}_")
    proc, port = serve(bundle.path, "handle_sweep", tmp_path / "sweep.log")
    try:
        bus.create_topic(TopicConfig(project.sweep.topic))
        bus.create_subscription(SubscriptionConfig(f"{uid}-sweep-push", project.sweep.topic, ack_deadline_seconds=60,
                                                   push_endpoint=f"http://127.0.0.1:{port}/projects/{gcp_project}/topics/{project.sweep.topic}"))
        observers = {}
        for t in project.transitions():
            if t.trigger_topic:
                bus.create_topic(TopicConfig(t.trigger_topic))
                observers[t.name] = f"{uid}-{t.source_phase}-observer"
                bus.create_subscription(SubscriptionConfig(observers[t.name], t.trigger_topic, ack_deadline_seconds=60))
        yield {"project": project, "bus": bus, "store": store, "log": tmp_path / "sweep.log", "observers": observers}
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
        bus.close()
        store.close()


def _tick(ctx: dict) -> int:
    """What the Cloud Scheduler job publishes, then wait until the function has logged a
    sweep for it. Returns the number of sweeps logged so far."""
    before = len(_sweeps(ctx["log"]))
    msg = sweep_message(ctx["project"])
    ctx["bus"].publish(ctx["project"].sweep.topic, msg["data"].encode(), msg["attributes"])
    deadline = time.monotonic() + TIMEOUT
    while len(_sweeps(ctx["log"])) <= before:
        assert time.monotonic() < deadline, f"no sweep logged:\n{ctx['log'].read_text()[-3000:]}"
        time.sleep(0.3)
    return len(_sweeps(ctx["log"]))


def _sweeps(log: Path) -> list[dict]:
    return [json.loads(line)["sweep"] for line in log.read_text().splitlines() if line.startswith("{") and '"sweep"' in line]


def _triggers(ctx: dict, transition: str, wait: float = 0.0) -> list[dict]:
    bus, sub, got = ctx["bus"], ctx["observers"][transition], []
    deadline = time.monotonic() + wait
    while True:
        batch = bus.pull(sub, max_messages=10)
        bus.ack(sub, [m.ack_id for m in batch])
        got += [json.loads(m.data) for m in batch]
        if got or time.monotonic() >= deadline:
            return got
        time.sleep(0.3)


def _completion(project, name: str, phase: str, date: str, uid: str) -> dict:
    kind = project.resolve_processor(name).entity
    return make_envelope(kind="completion", processor_name=name, phase=phase, partition=date, partition_column="game_date",
                         status="success", record_count=5, correlation_id=f"{uid}-{date}",
                         entities_changed={kind: [f"{kind}-{name}"]} if kind else None)


def _date(uid: str, salt: str) -> str:
    h = zlib.crc32((uid + salt).encode())
    return f"20{40 + h % 50}-{1 + h % 9:02d}-{10 + h % 18:02d}"


def test_deadline_passes_with_no_new_message_and_the_scheduled_sweep_fires_the_partial_trigger(sweep_function: dict, uid: str) -> None:
    ctx, project = sweep_function, sweep_function["project"]
    raw = project.phase("raw").transition
    date = _date(uid, "deadline")
    # 7 of 12 raw processors (every critical one) reported 5 hours ago: below both tiers
    # (10 after 30 min, 8 after 2 h), and past the 4 h deadline
    reported = list(raw.critical) + [n for n in raw.expected if n not in raw.critical][:7 - len(raw.critical)]
    orch = Orchestrator(project, ctx["store"], ctx["bus"], alerts=MemorySink(), clock=lambda: time.time() - 5 * 3600)
    for name in reported:
        assert orch.handle_completion(encode(_completion(project, name, "raw", date, uid))).action == "recorded"
    assert _triggers(ctx, raw.name) == []  # nothing fired when the completions arrived

    _tick(ctx)
    [trigger] = _triggers(ctx, raw.name, wait=30)
    assert (trigger["partition"], trigger["status"], trigger["phase"]) == (date, "partial", "analytics")
    assert sorted(trigger["metadata"]["completed"]) == sorted(reported)
    assert len(trigger["metadata"]["missing"]) == 5 and "deadline of 14400s passed" in trigger["metadata"]["reason"]
    sweep = [s for s in _sweeps(ctx["log"]) if s["published"]][-1]
    assert sweep["published"] == [trigger["trigger_id"]] and sweep["gate_failures"] == []
    _tick(ctx)  # the next tick publishes nothing more: exactly one trigger
    assert _triggers(ctx, raw.name, wait=2) == []


def test_crash_between_commit_and_publish_is_repaired_by_the_scheduled_sweep(sweep_function: dict, uid: str) -> None:
    ctx, project = sweep_function, sweep_function["project"]
    analytics = project.phase("analytics").transition
    date = _date(uid, "crash")
    names = sorted(p.name for p in project.processors_in("analytics"))
    orch = Orchestrator(project, ctx["store"], ctx["bus"], alerts=MemorySink())
    for name in names[:-1]:
        orch.handle_completion(encode(_completion(project, name, "analytics", date, uid)))
    # the last completion: the ledger transaction commits (decision + pending trigger), then
    # the process dies before publishing. It happened a minute ago: the 30 s publish lease
    # that keeps an immediate redelivery from publishing it too has expired.
    env = _completion(project, names[-1], "analytics", date, uid)
    ctx_ = orch.ledger_context(analytics, date)
    step = ctx["store"].run_transaction(lambda txn: lg.record_completion(txn, ctx_, env, names[-1], {}, True, time.time() - 60))
    assert step.action == "triggered" and step.publish == [step.trigger_id]
    assert ctx["store"].get(lg.TRIGGERS, step.trigger_id)["state"] == "pending"
    assert _triggers(ctx, analytics.name) == []

    _tick(ctx)
    [trigger] = _triggers(ctx, analytics.name, wait=30)
    assert trigger["trigger_id"] == step.trigger_id and trigger["partition"] == date
    assert ctx["store"].get(lg.TRIGGERS, step.trigger_id)["state"] == "published"
    _tick(ctx)
    assert _triggers(ctx, analytics.name, wait=2) == []
