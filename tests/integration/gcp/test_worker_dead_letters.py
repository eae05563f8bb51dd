"""A fan-out task whose every delivery kills its instance, on the emulators: Pub/Sub
dead-letters it, pipectl's push subscription of the dead-letter topic brings it to the
worker, and the run ends `partial` naming the entity, at once and exactly once.

The deployment of docs/gcp.md: `pipectl apply` on an ``execution: remote`` target creates the
push subscriptions (triggers, tasks, and ``<dead-letter topic>-pipectl-worker`` to
``/task-dead-letter``); a real worker process (``python -m framework.worker``) and the
orchestrator function bundle (functions-framework) serve them; `pipectl run` publishes the
first trigger and follows. The shop project's ``customer_totals`` is fanned out with a Python
transform that ends its process (``os._exit``, after the other tasks in flight ended) for
customer ``c3``: every delivery of that task crashes the worker, which the test restarts as
Cloud Run starts a new instance.
"""
from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest

from framework.backends.firestore import FirestoreStateStore
from framework.backends.bigquery import BigQueryWarehouse
from framework.backends.pubsub import PubSubBus
from framework.deploy.package import build_bundle
from framework.project import load
from framework.run.fanout import TASKS
from framework.run.fanout_remote import RUNS
from framework.run.history import RunHistory
from projects import PROCESSORS, SQL, TOPICS, write_project
from test_remote_run import RAW_TRIGGER, _cli, _yaml
from test_worker_e2e import deliveries
from worker_cluster import RoundRobinProxy, free_port, start_function, start_worker, stop, wait_listening

pytestmark = pytest.mark.gcp

CRASH = "c3"
FAN = """\
import os
import time
from pathlib import Path

MARKS = Path(__file__).parent / "marks"


def totals(ctx):
    ids = list(ctx.entity_ids or [])
    if ids == ['c3']:
        # the other tasks end first (so only this one dies with the instance), then it crashes
        deadline = time.monotonic() + 120
        while len(list(MARKS.glob('c*'))) < 5 and time.monotonic() < deadline:
            time.sleep(0.2)
        time.sleep(2)
        os._exit(3)  # the instance dies: no answer, nothing recorded
    if len(ids) == 1:
        MARKS.mkdir(exist_ok=True)
        (MARKS / ids[0]).touch()
    sql = f"SELECT day, customer_id, SUM(amount) AS total FROM {ctx.ref('orders_raw')} o "
    sql += f"WHERE o.day = {ctx.partition_placeholder} AND {ctx.entity_filter('o.customer_id')} GROUP BY day, customer_id"
    return ctx.query(sql)
"""


class Instances:
    """The worker service: processes behind one URL, each replaced when it dies (Cloud Run)."""

    def __init__(self, root: Path, logs: Path, count: int = 2):
        self.root, self.logs = root, logs
        self.ports = [free_port() for _ in range(count)]
        self.proxy = RoundRobinProxy(self.ports)
        self.started: list[Path] = []
        self.procs: list = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def _start(self, port: int):
        log = self.logs / f"worker{len(self.started)}.log"
        self.started.append(log)
        return start_worker(self.root, log, port)

    def _watch(self) -> None:
        while not self._stop.wait(0.2):
            for i, proc in enumerate(self.procs):
                if proc.poll() is not None:
                    self.procs[i] = self._start(self.ports[i])

    def run(self) -> None:
        self.procs = [self._start(port) for port in self.ports]
        for port, proc, log in zip(self.ports, self.procs, self.started):
            wait_listening(port, proc, log)
        self.proxy.start()
        self._thread.start()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        if self.proxy.thread.is_alive():
            self.proxy.stop()
        for proc in self.procs:
            stop(proc)

    def deliveries(self) -> list[dict]:
        return [d for log in self.started if log.exists() for d in deliveries(log)]


@pytest.mark.timeout(900)
def test_a_task_that_crashes_every_instance_is_dead_lettered_and_ends_the_run_partial(tmp_path: Path, uid: str) -> None:
    gcp_project, prefix = f"dl-{uid}", f"{uid}_"
    fport = free_port()
    workers = Instances(tmp_path / "shop", tmp_path)
    wport = workers.proxy.port
    rename = lambda text: text.replace("shop", uid)  # noqa: E731 - unique names on the shared emulators
    processors = PROCESSORS.replace("    transform: {sql: sql/customer_totals.sql}\n",
                                    "    transform: {python: \"fan_totals:totals\"}\n"
                                    "    fanout: {task_topic: shop-tasks, workers: 2, max_attempts: 3}\n")
    topics = TOPICS + RAW_TRIGGER + (
        "  - name: shop-tasks\n    contract: task\n    producers: [fanout:customer_totals]\n"
        "    consumers: [fanout:customer_totals]\n    dead_letter_topic: shop-dead-letter\n"
        "    subscriptions:\n      - {name: shop-tasks-workers, consumer: fanout:customer_totals, ack_deadline: 60s, "
        "max_delivery_attempts: 5}\n")
    root = write_project(tmp_path / "shop", rename(processors), rename(topics), SQL)
    (root / "fan_totals.py").write_text(FAN)
    (root / "pipectl.yaml").write_text(_yaml(gcp_project, prefix, wport, fport))
    project = load(root)
    dlq, tasks_sub = f"{uid}-dead-letter", f"{uid}-tasks-workers"
    wh = BigQueryWarehouse(gcp_project, timeout=120)
    store = FirestoreStateStore(gcp_project, prefix=prefix)
    bus = PubSubBus(gcp_project)
    function = None
    try:
        applied = _cli(root, "apply", "--auto-approve")
        assert applied.returncode == 0, applied.stdout[-2000:] + applied.stderr[-3000:]
        dead_sub = bus.get_subscription(f"{dlq}-pipectl-worker")
        assert dead_sub is not None and dead_sub.topic == dlq
        assert dead_sub.push_endpoint == f"http://127.0.0.1:{wport}/task-dead-letter" and dead_sub.dead_letter_topic is None
        replan = _cli(root, "plan", "--detailed-exitcode")
        assert replan.returncode == 0, replan.stdout[-2000:] + replan.stderr[-2000:]  # read back exactly as applied
        task_config = bus.get_subscription(tasks_sub)
        attempts = task_config.max_delivery_attempts  # the declared 5, plus one per 600 s of the task's timeout
        assert task_config.dead_letter_topic == dlq and attempts >= 5
        # the deployment's retry backoff (10 s doubling to 600 s) would take minutes to reach
        # the 5th delivery; the emulator honours it, so the test redelivers at once instead
        from dataclasses import replace

        bus.update_subscription(replace(task_config, retry_min_backoff_seconds=None, retry_max_backoff_seconds=None))
        rows = [{"day": "2025-01-01", "customer_id": f"c{i}", "store_id": f"s{i % 3}", "amount": float(i)} for i in range(6)]
        wh.insert_rows("landing.orders", rows)

        flog = tmp_path / "function.log"
        function = start_function(build_bundle(root, tmp_path / "dist").path, flog, fport)
        wait_listening(fport, function, flog)
        workers.run()

        run = _cli(root, "run", "--date", "2025-01-01", "--fast-forward", "--timeout", "600", "--json", timeout=700)
        tails = (f"--- run\n{run.stdout[-3000:]}\n{run.stderr[-3000:]}\n--- workers\n"
                 + "\n".join(log.read_text(errors="replace")[-2000:] for log in workers.started)
                 + f"\n--- function\n{flog.read_text(errors='replace')[-2000:]}")
        assert run.returncode == 0, tails
        report = json.loads(run.stdout)
        assert report["status"] == "partial", tails

        runs = {r.processor: r for r in RunHistory(store).list(correlation_id=report["correlation_id"], limit=None)}
        fanned = runs["customer_totals"]
        assert fanned.status == "partial" and CRASH in (fanned.error or ""), tails
        assert list(fanned.metadata["failed_entities"]) == [CRASH]
        reason = fanned.metadata["failed_entities"][CRASH]
        assert reason.startswith(f"dead-lettered: {attempts} delivery attempts exhausted on {tasks_sub} without a recorded outcome"), reason
        assert len(workers.started) >= 3, tails  # the task really crashed an instance
        assert store.get(RUNS, fanned.run_id)["state"] == "finished" and store.query(TASKS, {"run_id": fanned.run_id}) == []
        rows_out = wh.query(f"SELECT customer_id FROM {project.processors['customer_totals'].output.fqn}")  # noqa: S608
        assert sorted(r["customer_id"] for r in rows_out) == [f"c{i}" for i in range(6) if f"c{i}" != CRASH]

        letters = [d for d in workers.deliveries() if d["route"] == "task-dead-letter"]
        mine = [d for d in letters if d.get("entity") == CRASH]
        assert [(d["outcome"], d["status"]) for d in mine] == [("failed", 200)], letters
        assert [d.get("finished") for d in workers.deliveries() if d.get("finished")] == ["partial"]  # finished once
        from framework.alerts.alert_log import recent_alerts

        alerts = [a for a in recent_alerts(store) if a.get("signature") == "fanout_dead_letter:customer_totals"]
        assert len(alerts) == 1 and CRASH in alerts[0]["message"]
        # the letter is still listed for operators (pipectl's inspect subscription), with its reason
        listed = _cli(root, "bus", "dead-letters", "--topic", dlq, "--json")
        assert any(json.loads(x["data"]).get("entity") == CRASH for x in json.loads(listed.stdout)
                   if x["data"].startswith("{")), listed.stdout[-2000:]
    finally:
        workers.close()
        if function is not None:
            stop(function)
        bus.close()
        wh.close()
        store.close()
