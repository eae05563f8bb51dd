"""A full example day on three worker processes fed by Pub/Sub push, on the emulators.

The deployment of docs/gcp.md, locally: the scheduler's first trigger goes to the raw phase's
trigger topic; push subscriptions deliver triggers to the workers' ``/trigger`` and the
predictions fan-out's tasks to ``/task`` (three ``python -m framework.worker`` processes
behind one URL, see worker_cluster.py), completions to the orchestrator Cloud Function
(functions-framework serving the packaged bundle), which publishes the next phase's trigger.
BigQuery, Pub/Sub and Firestore are the emulators. Mid-fan-out one worker is killed
(SIGKILL): its tasks in flight are redelivered to the others.

Checked: every output table equals the embedded (DuckDB) run of the same data; every
processor ran and published its completion exactly once; the fan-out's tasks ran on all
three workers, none was lost and none counted twice. The day is the example's sample at 5
players per team (150 players, 109 prediction tasks) to fit the CI budget; the phases and
processors are the full example's.
"""
from __future__ import annotations

import datetime as dt
import json
import signal
import time
from pathlib import Path

import pytest

from framework.backends.bigquery import BigQueryWarehouse
from framework.backends.firestore import FirestoreStateStore
from framework.backends.protocols import SubscriptionConfig
from framework.backends.pubsub import PubSubBus
from framework.deploy.package import build_bundle
from framework.orchestrator.envelope import encode, make_envelope
from framework.project import load
from framework.run.fanout import TASKS
from framework.run.fanout_remote import RUNS
from framework.run.history import RunHistory
from framework.drive.session import Session, default_sample_date, run_partition, sample_module
from projects import copy_example, snapshot_tables, table_differences
from worker_cluster import RoundRobinProxy, free_port, push_topology, start_function, start_worker, stop, wait_listening

PLAYERS = 5
WORKERS = 3
TIMEOUT = 900.0  # the whole day; ~3 min on an idle 2-core machine, minutes more when the emulators are shared
FANNED = "player_prop_predictions"


def _gcp_yaml(gcp_project: str, prefix: str) -> str:
    return (f"targets:\n  gcp:\n    project: {gcp_project}\n    warehouse: {{type: bigquery, timeout: 120}}\n"
            f"    bus: {{type: pubsub}}\n    state: {{type: firestore, prefix: {prefix}}}\n")


def utc_naive(snapshot: dict[str, list[tuple]]) -> dict[str, list[tuple]]:
    """BigQuery returns TIMESTAMPs time-zone aware (UTC), DuckDB naive: compare both as naive UTC."""
    def norm(value: object) -> object:
        if isinstance(value, dt.datetime) and value.tzinfo is not None:
            return value.astimezone(dt.timezone.utc).replace(tzinfo=None)
        return value

    return {table: sorted((tuple(norm(v) for v in row) for row in rows), key=repr) for table, rows in snapshot.items()}


def deliveries(log: Path) -> list[dict]:
    """The worker's delivery lines (one JSON object per answered push request)."""
    out = []
    for line in log.read_text(errors="replace").splitlines():
        if "framework.worker.deliveries" in line and "{" in line:
            out.append(json.loads(line[line.index("{"):]))
    return out


def first_trigger(bus: PubSubBus, project, date: str, uid: str) -> None:
    topic = next(t.name for t in project.topics.values() if t.contract == "trigger" and "phase:raw" in t.consumers)
    trigger_id = f"scheduler:raw:{date}:{uid}"
    env = make_envelope(kind="trigger", processor_name="scheduler", phase="raw", partition_column="game_date",
                        execution_id=trigger_id, correlation_id=f"{uid}-day", partition=date, status="success",
                        record_count=0, duration_seconds=0.0, trigger_id=trigger_id, round=1,
                        metadata={"mode": "incremental", "source": "scheduler"})
    bus.publish(topic, encode(env), {"trigger_id": trigger_id, "partition": date})


def test_a_day_on_three_push_fed_workers_equals_the_embedded_run(tmp_path: Path, uid: str) -> None:
    gcp_project, prefix = f"wk-{uid}", f"{uid}_"
    root = copy_example(tmp_path / "project", templates=True, pipectl_yaml=_gcp_yaml(gcp_project, prefix))
    project = load(root)
    date = default_sample_date(project)
    wh = BigQueryWarehouse(gcp_project, timeout=120)
    sample_module(project, "generate")(wh, date, days=1, seed=42, players_per_team=PLAYERS)
    bus = PubSubBus(gcp_project)
    store = FirestoreStateStore(gcp_project, prefix=prefix)
    bundle = build_bundle(root, tmp_path / "dist")
    procs, logs = [], []
    proxy = None
    try:
        fport = free_port()
        flog = tmp_path / "function.log"
        function = start_function(bundle.path, flog, fport)
        procs.append(function)
        ports = [free_port() for _ in range(WORKERS)]
        for i, port in enumerate(ports):
            logs.append(tmp_path / f"worker{i}.log")
            procs.append(start_worker(root, logs[-1], port))
        wait_listening(fport, function, flog)
        for port, proc, log in zip(ports, procs[1:], logs):
            wait_listening(port, proc, log)
        proxy = RoundRobinProxy(ports)
        url = proxy.start()
        push_topology(bus, project, gcp_project, url, fport, prefix)
        observers = {}
        for t in project.transitions():
            if t.completion_topic:
                observers[t.completion_topic] = f"{prefix}{t.completion_topic}-observer"
                bus.create_subscription(SubscriptionConfig(observers[t.completion_topic], t.completion_topic,
                                                           ack_deadline_seconds=60))

        first_trigger(bus, project, date, uid)
        victim, killed_with_open = procs[1 + WORKERS - 1], None
        history = RunHistory(store)
        enabled = sorted(p.name for p in project.processors.values() if p.enabled)
        deadline = time.monotonic() + TIMEOUT
        while time.monotonic() < deadline:
            if killed_with_open is None:
                mine = [d for d in deliveries(logs[-1]) if d["route"] == "task" and d["outcome"] == "done"]
                tasks = [doc for _, doc in store.query(TASKS)]
                still_open = [d for d in tasks if d.get("open")]
                if len(mine) >= 3 and len(still_open) >= 10:  # mid-fan-out: the victim has run tasks, many remain
                    victim.send_signal(signal.SIGKILL)
                    victim.wait(timeout=10)
                    killed_with_open = len(still_open)
            runs = history.list(partition=date, limit=None)
            finished = {r.processor for r in runs if r.status != "running"}
            if set(enabled) <= finished:
                break
            for proc, log in zip(procs, [flog, *logs]):
                if proc is not victim and proc.poll() is not None:
                    pytest.fail(f"{log.name} exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
            time.sleep(1.0)
        runs = history.list(partition=date, limit=None)
        tails = "\n".join(f"--- {log.name}\n{log.read_text(errors='replace')[-2500:]}" for log in [flog, *logs])
        assert killed_with_open, f"the fan-out never reached the kill point\n{tails}"
        by_proc: dict[str, list[str]] = {}
        for r in runs:
            by_proc.setdefault(r.processor, []).append(r.status)
        # every processor ran exactly once, successfully
        assert by_proc == {name: ["success"] for name in enabled}, tails

        # ... and published exactly one completion
        completions: dict[str, int] = {}
        for sub in observers.values():
            while True:
                got = bus.pull(sub, max_messages=100)
                if not got:
                    break
                bus.ack(sub, [m.ack_id for m in got])
                for m in got:
                    name = json.loads(m.data)["processor_name"]
                    completions[name] = completions.get(name, 0) + 1
        publishing = {n for n in enabled if (project.phase(project.processors[n].phase).transition or None)
                      and project.phase(project.processors[n].phase).transition.completion_topic}
        assert completions == {name: 1 for name in publishing}, completions

        # the fan-out: spread over all three workers, nothing lost, nothing counted twice
        run = next(r for r in runs if r.processor == FANNED)
        total = run.metadata["fanout_tasks"]
        assert total > 20 and run.metadata["failed_entities"] == {}
        done = [(i, d["entity"]) for i, log in enumerate(logs) for d in deliveries(log)
                if d["route"] == "task" and d["outcome"] == "done" and d["run_id"] == run.run_id]
        assert {i for i, _ in done} == set(range(WORKERS)), f"tasks per worker: {[sum(1 for i, _ in done if i == w) for w in range(WORKERS)]}"
        entities = [e for _, e in done]
        assert len(entities) == len(set(entities)), "a task was recorded done twice"
        redelivered = {d["entity"] for log in logs[:-1] for d in deliveries(log)
                       if d["route"] == "task" and d["outcome"] == "duplicate" and d["run_id"] == run.run_id}
        assert len(set(entities) | redelivered) == total  # the victim's recorded-but-unanswered ones were redelivered
        assert store.get(RUNS, run.run_id)["state"] == "finished"
        assert store.query(TASKS, {"run_id": run.run_id}) == []
        finishers = [d for log in logs for d in deliveries(log) if d.get("finished")]
        assert [d["finished"] for d in finishers] == ["success"]

        # every output table equals the embedded run's
        with Session.open(root, "gcp") as gcp:
            on_gcp = utc_naive(snapshot_tables(gcp))
        ref_root = copy_example(tmp_path / "reference", templates=True)
        with Session.open(ref_root) as ref:
            sample_module(ref.project, "generate")(ref.warehouse, date, days=1, seed=42, players_per_team=PLAYERS)
            assert run_partition(ref, date).status == "success"
            assert table_differences(on_gcp, utc_naive(snapshot_tables(ref))) == []
    finally:
        if proxy is not None:
            proxy.stop()
        for proc in procs:
            stop(proc)
        bus.close()
        wh.close()
        store.close()
