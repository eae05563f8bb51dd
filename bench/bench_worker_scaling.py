"""The predictions fan-out's wall time with 1, 2 and 4 worker processes, on the emulators.

Needs the emulators (``bash .ci/emulators.sh start``). Setup, once: the example project with a
``gcp`` target on its own emulator project, its sample day (``--players`` per team), and every
phase before predictions run with ``pipectl run``'s driver on the gcp target. Then, in
interleaved rounds, the same full-batch fan-out of ``player_prop_predictions`` (one task per
player) is timed

* ``local``: as ``pipectl run --target gcp`` runs it today: one process, the coordinator and
  ``fanout.workers`` (4) threads pulling the task subscription (``ProcessorRunner`` as the
  driver builds it; the real baseline the worker service must beat);
* ``emulator workers=N``: N ``python -m framework.worker`` processes behind one URL (the local
  stand-in of a Cloud Run service's instances, tests/integration/gcp/worker_cluster.py), the
  trigger and the tasks delivered by Pub/Sub emulator push subscriptions: from publishing the
  predictions trigger until the run record is finished by whichever instance ended the last
  task. The emulator keeps at most two push requests in flight per subscription (measured
  first), so this mode cannot scale past two busy workers;
* ``post workers=N``: the same, the tasks delivered by :class:`PullPoster` with 4 requests in
  flight per worker (Cloud Run's ``--concurrency`` 4 of ``pipectl package --worker``), as
  Pub/Sub's push does when a backlog builds up.

    python bench/bench_worker_scaling.py [--players 5] [--rounds 2] [--workers 1,2,4] [--delivery emulator,post]

Prints min and median seconds per mode and the ratios against 1 worker and against ``local``.
The emulators and the worker processes share this machine's cores, so the figures measure
how the protocol scales here, not Cloud Run's (where each instance brings its own CPU and
BigQuery runs the jobs).
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "tests" / "integration" / "gcp"))

from framework.backends import gcp_emulators  # noqa: E402

gcp_emulators.use_emulators()

from benchlib import machine  # noqa: E402
from framework.orchestrator.envelope import encode, make_envelope  # noqa: E402
from framework.run.history import RunHistory  # noqa: E402
from framework.run.runner import ProcessorRunner, RunRequest  # noqa: E402
from framework.drive.session import Session, default_sample_date, run_partition, sample_module  # noqa: E402
from projects import copy_example  # noqa: E402
from worker_cluster import RoundRobinProxy, free_port, push_topology, start_worker, stop, wait_listening  # noqa: E402

FANNED = "player_prop_predictions"


def predictions_trigger(session: Session, date: str) -> tuple[str, bytes, dict[str, str]]:
    """A full-batch trigger of the predictions phase (every player a task)."""
    project = session.project
    phase = project.processors[FANNED].phase
    topic = next(p.transition.trigger_topic for p in project.phases if p.transition and p.transition.trigger_topic
                 and project.next_phase(p.name) and project.next_phase(p.name).name == phase)
    tid = f"bench:{phase}:{date}:{uuid.uuid4().hex[:8]}"
    env = make_envelope(kind="trigger", processor_name="bench", phase=phase, partition_column=project.partition_column,
                        execution_id=tid, correlation_id=tid, partition=date, status="success", record_count=0,
                        duration_seconds=0.0, trigger_id=tid, round=1,
                        metadata={"mode": "full", "source": "bench", "full": True, "expected": [FANNED]})
    return topic, encode(env), {"trigger_id": tid, "partition": date}


def time_local(session: Session, date: str) -> tuple[float, int]:
    runner = ProcessorRunner(session.project, session.warehouse, session.backends.bus, session.backends.state)
    t0 = time.perf_counter()
    res = runner.run(RunRequest(FANNED, date, full=True, publish=False, mode="bench"))
    assert res.status == "success", res.error
    return time.perf_counter() - t0, int(res.tasks or 0)


class PullPoster:
    """Delivers a pull subscription's messages as push requests, ``concurrency`` at a time:
    the stand-in for Pub/Sub's push, whose concurrency grows with the backlog (the emulator's
    push keeps only two requests in flight per subscription, see :func:`push_concurrency`).
    The request is the one Pub/Sub sends; 2xx acknowledges, anything else nacks."""

    def __init__(self, bus: Any, subscription: str, url: str, concurrency: int):
        import threading

        self.bus, self.subscription, self.url = bus, subscription, url
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=self._loop, daemon=True) for _ in range(concurrency)]
        for t in self.threads:
            t.start()

    def _loop(self) -> None:
        import base64
        import json
        import urllib.error
        import urllib.request

        while not self.stop.is_set():
            got = self.bus.pull(self.subscription, max_messages=1)
            if not got:
                time.sleep(0.05)
                continue
            msg = got[0]
            body = json.dumps({"message": {"data": base64.b64encode(msg.data).decode(), "attributes": dict(msg.attributes),
                                           "messageId": msg.message_id},
                               "subscription": f"projects/bench/subscriptions/{self.subscription}",
                               "deliveryAttempt": msg.delivery_attempt}).encode()
            req = urllib.request.Request(self.url, data=body, headers={"Content-Type": "application/json"}, method="POST")
            try:
                with urllib.request.urlopen(req, timeout=900) as resp:  # noqa: S310 - local URL
                    ok = 200 <= resp.status < 300
            except (urllib.error.URLError, OSError):
                ok = False
            (self.bus.ack if ok else self.bus.nack)(self.subscription, [msg.ack_id])

    def close(self) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(5)


def time_workers(session: Session, date: str, proxy: RoundRobinProxy, url: str, root: Path, n: int, logdir: Path,
                 delivery: str, prefix: str) -> tuple[float, int]:
    from framework.backends.protocols import SubscriptionConfig

    bus = session.backends.bus
    task_topic = session.project.processors[FANNED].fanout.task_topic
    sub = f"{prefix}tasks-{delivery}-{n}-{uuid.uuid4().hex[:4]}"
    bus.create_subscription(SubscriptionConfig(sub, task_topic, ack_deadline_seconds=120, max_delivery_attempts=5,
                                               push_endpoint=f"{url}/task" if delivery == "emulator" else None))
    poster = PullPoster(bus, sub, f"{url}/task", 4 * n) if delivery == "post" else None
    ports = [free_port() for _ in range(n)]
    procs = [start_worker(root, logdir / f"w{n}-{i}.log", port) for i, port in enumerate(ports)]
    try:
        for port, proc, i in zip(ports, procs, range(n)):
            wait_listening(port, proc, logdir / f"w{n}-{i}.log")
        proxy.ports = ports
        history = RunHistory(session.backends.state)
        topic, data, attrs = predictions_trigger(session, date)
        t0, wall = time.time(), time.perf_counter()
        session.backends.bus.publish(topic, data, attrs)
        while True:
            runs = [r for r in history.list(processor=FANNED, partition=date, limit=5) if r.started_at >= t0 - 1]
            if runs and runs[0].status != "running":
                assert runs[0].status == "success", runs[0].error
                return time.perf_counter() - wall, int(runs[0].metadata.get("fanout_tasks") or 0)
            if time.perf_counter() - wall > 1800:
                raise TimeoutError(f"the fan-out with {n} worker(s) did not finish in 30 minutes (logs in {logdir})")
            time.sleep(0.2)
    finally:
        if poster is not None:
            poster.close()
        for proc in procs:
            stop(proc)
        bus.delete_subscription(sub)


def push_concurrency(gcp_project: str, prefix: str, messages: int = 12) -> int:
    """How many push requests the Pub/Sub emulator keeps in flight on one subscription
    (a server that answers after 0.5 s counts them): the ceiling of any scaling measured here."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from framework.backends.protocols import SubscriptionConfig, TopicConfig
    from framework.backends.pubsub import PubSubBus

    state = {"now": 0, "max": 0, "done": 0}
    lock = threading.Lock()

    class Slow(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: Any) -> None:
            pass

        def do_POST(self) -> None:  # noqa: N802 - http.server's name
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            with lock:
                state["now"] += 1
                state["max"] = max(state["max"], state["now"])
            time.sleep(0.5)
            with lock:
                state["now"] -= 1
                state["done"] += 1
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

    server = ThreadingHTTPServer(("127.0.0.1", 0), Slow)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    bus = PubSubBus(gcp_project)
    try:
        bus.create_topic(TopicConfig(f"{prefix}probe"))
        bus.create_subscription(SubscriptionConfig(f"{prefix}probe-push", f"{prefix}probe", ack_deadline_seconds=60,
                                                   push_endpoint=f"http://127.0.0.1:{server.server_address[1]}/x"))
        bus.publish_many(f"{prefix}probe", [(b"x", {}) for _ in range(messages)])
        deadline = time.monotonic() + 120
        while state["done"] < messages and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        server.shutdown()
        bus.close()
    return state["max"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--players", type=int, default=5, help="players per team (5: 109 prediction tasks; 15: the full day)")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--workers", default="1,2,4")
    ap.add_argument("--delivery", default="emulator,post",
                    help="emulator: the emulator's push subscription (2 requests in flight); post: PullPoster, "
                         "4 requests in flight per worker (Cloud Run's concurrency 4), as Pub/Sub's push would")
    args = ap.parse_args()
    counts = [int(x) for x in args.workers.split(",")]
    uid = uuid.uuid4().hex[:8]
    gcp_project, prefix = f"bench-{uid}", f"b{uid}_"
    tmp = Path(tempfile.mkdtemp(prefix="bench_worker_"))
    root = copy_example(tmp / "project", templates=True, pipectl_yaml=(
        f"targets:\n  gcp:\n    project: {gcp_project}\n    warehouse: {{type: bigquery, timeout: 300}}\n"
        f"    bus: {{type: pubsub}}\n    state: {{type: firestore, prefix: {prefix}}}\n"))
    print(machine())
    print(f"Pub/Sub emulator: at most {push_concurrency(gcp_project, prefix)} push request(s) in flight per subscription")
    with Session.open(root, "gcp") as session:
        date = default_sample_date(session.project)
        sample_module(session.project, "generate")(session.warehouse, date, days=1, seed=42, players_per_team=args.players)
        before = [p.name for p in session.project.phases][:[p.name for p in session.project.phases].index(
            session.project.processors[FANNED].phase)]
        t0 = time.perf_counter()
        for phase in before:  # the phases upstream of the fan-out, with pipectl run's driver
            report = run_partition(session, date, from_phase=phase, trigger_downstream=False, full=True)
            assert report.status == "success", report.to_dict()
        print(f"setup: {args.players} players per team, upstream phases on the emulators in {time.perf_counter() - t0:.0f}s")
        proxy = RoundRobinProxy([])
        url = proxy.start()
        push_topology(session.backends.bus, session.project, gcp_project, url, None, prefix, tasks=False)
        times: dict[str, list[float]] = {}
        tasks = 0
        try:
            for r in range(args.rounds):
                modes = ["local"] + [f"{d} workers={n}" for d in args.delivery.split(",") for n in counts]
                for mode in modes:
                    if mode == "local":
                        secs, tasks = time_local(session, date)
                    else:
                        delivery, n = mode.split(" workers=")
                        secs, tasks = time_workers(session, date, proxy, url, root, int(n), tmp, delivery, prefix)
                    times.setdefault(mode, []).append(secs)
                    print(f"  round {r + 1} {mode:10} {secs:7.1f}s ({tasks} tasks)", flush=True)
        finally:
            proxy.stop()
    base_local = min(times["local"])
    print(f"\npredictions fan-out, {tasks} tasks, {args.rounds} interleaved round(s), full batch each time; "
          f"ratios are speed-ups (baseline seconds / these seconds, from the minimums)")
    print(f"{'mode':22} {'min s':>8} {'median s':>9} {'vs 1 worker':>12} {'vs local':>9}")
    for mode, values in times.items():
        lo, med = min(values), statistics.median(values)
        one = min(times.get(f"{mode.split(' workers=')[0]} workers=1", times["local"]))
        print(f"{mode:22} {lo:8.1f} {med:9.1f} {one / lo:11.2f}x {base_local / lo:8.2f}x")


if __name__ == "__main__":
    main()
