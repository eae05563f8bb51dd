"""`pipectl run` on an ``execution: remote`` target, end to end on the emulators.

The deployment as docs/gcp.md describes it, locally: `pipectl apply` creates the tables,
topics and the push subscriptions (triggers and fan-out tasks to a real worker process,
`python -m framework.worker`; completions to the orchestrator function bundle served by
functions-framework); then `pipectl --target gcp run --date D` publishes the first trigger
and follows. The run command runs in a process of its own, which must end with exit 0 and
must never have imported the processor runner: every processor ran in the worker.

CI runs the two-phase shop project; ``--remote-example-day`` adds the full example day (every
phase of the NBA example and its fan-out, about 10 minutes on the emulators).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Callable

import pytest

from framework.backends.bigquery import BigQueryWarehouse
from framework.backends.firestore import FirestoreStateStore
from framework.backends.pubsub import PubSubBus
from framework.deploy.package import build_bundle
from framework.project import load
from framework.run.history import RunHistory
from projects import PROCESSORS, SQL, TOPICS, copy_example, write_project
from worker_cluster import free_port, start_function, start_worker, stop, wait_listening

pytestmark = pytest.mark.gcp

REPO = Path(__file__).resolve().parents[3]
RUNTIME = ("framework.run.runner", "framework.drive.pipeline", "framework.run.fanout",
           "framework.run.transform", "framework.run.changes")
PROBE = f"""
import sys
from framework.cli import main
code = main(sys.argv[1:])
print('LEAKED=' + ','.join(sorted(m for m in sys.modules if m in {RUNTIME!r})), file=sys.stderr)
sys.exit(code)
"""
RAW_TRIGGER = """\
  - name: shop-raw-trigger
    contract: trigger
    producers: [external:ingest]
    consumers: [phase:raw]
    dead_letter_topic: shop-dead-letter
    subscriptions:
      - {name: shop-raw-trigger-sub, consumer: phase:raw}
"""


def _yaml(gcp_project: str, prefix: str, worker_port: int, function_port: int) -> str:
    return (f"targets:\n  gcp:\n    project: {gcp_project}\n    execution: remote\n"
            f"    warehouse: {{type: bigquery, timeout: 120}}\n    bus: {{type: pubsub}}\n"
            f"    state: {{type: firestore, prefix: {prefix}}}\n"
            f"    worker: {{url: 'http://127.0.0.1:{worker_port}'}}\n"
            f"    orchestrator: {{url: 'http://127.0.0.1:{function_port}/'}}\n")


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH")) if p)}


def _cli(root: Path, *args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", PROBE, "-p", str(root), "-t", "gcp", *args],
                          env=_env(), capture_output=True, text=True, timeout=timeout)


def _shop(tmp_path: Path, uid: str, yaml: str) -> tuple[Path, str, Callable[[BigQueryWarehouse], None]]:
    rename = lambda text: text.replace("shop", uid)  # noqa: E731 - unique names on the shared emulators
    root = write_project(tmp_path / "shop", rename(PROCESSORS), rename(TOPICS + RAW_TRIGGER), SQL)
    (root / "pipectl.yaml").write_text(yaml)
    rows = [{"day": "2025-01-01", "customer_id": f"c{i}", "store_id": f"s{i % 3}", "amount": float(i)} for i in range(8)]
    return root, "2025-01-01", lambda wh: wh.insert_rows("landing.orders", rows)


def _example(tmp_path: Path, uid: str, yaml: str) -> tuple[Path, str, Callable[[BigQueryWarehouse], None]]:
    from framework.drive.session import default_sample_date, sample_module

    root = copy_example(tmp_path / "project", templates=True, pipectl_yaml=yaml)
    project = load(root)
    date = default_sample_date(project)
    return root, date, lambda wh: sample_module(project, "generate")(wh, date, days=1, seed=42, players_per_team=5)


@pytest.mark.timeout(1800)  # the example day: about 10 minutes on the emulators
@pytest.mark.parametrize("which", ["shop", pytest.param("example-day", marks=pytest.mark.remote_example_day)])
def test_remote_run_publishes_and_follows_while_the_worker_runs_every_processor(
        tmp_path: Path, uid: str, which: str) -> None:
    gcp_project, prefix = f"rr-{uid}", f"{uid}_"
    wport, fport = free_port(), free_port()
    root, date, load_data = (_shop if which == "shop" else _example)(tmp_path, uid, _yaml(gcp_project, prefix, wport, fport))
    project = load(root)
    wh = BigQueryWarehouse(gcp_project, timeout=120)
    store = FirestoreStateStore(gcp_project, prefix=prefix)
    bus = PubSubBus(gcp_project)
    procs = []
    try:
        # before apply the trigger subscriptions pull: the run refuses to publish into them
        refused = _cli(root, "run", "--date", date, timeout=120)
        assert refused.returncode == 1 and "no worker receives the triggers" in refused.stderr, refused.stderr[-2000:]

        applied = _cli(root, "apply", "--auto-approve")
        assert applied.returncode == 0, applied.stdout[-2000:] + applied.stderr[-3000:]
        for topic in project.topics.values():
            for sub in topic.subscriptions:
                got = bus.get_subscription(sub.name).push_endpoint
                if sub.consumer.startswith("phase:"):
                    assert got == f"http://127.0.0.1:{wport}/trigger", sub.name
                elif sub.consumer.startswith("fanout:"):
                    assert got == f"http://127.0.0.1:{wport}/task", sub.name
                elif sub.consumer.startswith("orchestrator:"):
                    assert got == f"http://127.0.0.1:{fport}/projects/{gcp_project}/topics/{topic.name}", sub.name
        load_data(wh)

        flog, wlog = tmp_path / "function.log", tmp_path / "worker.log"
        procs.append(start_function(build_bundle(root, tmp_path / "dist").path, flog, fport))
        procs.append(start_worker(root, wlog, wport))
        wait_listening(fport, procs[0], flog)
        wait_listening(wport, procs[1], wlog)

        run = _cli(root, "run", "--date", date, "--fast-forward", "--timeout", "1200", "--json", timeout=1300)
        tails = (f"--- run\n{run.stdout[-3000:]}\n{run.stderr[-3000:]}\n--- worker\n{wlog.read_text(errors='replace')[-3000:]}"
                 f"\n--- function\n{flog.read_text(errors='replace')[-2000:]}")
        assert run.returncode == 0, tails
        # the run process never loaded the processor runner: every processor ran in the worker
        assert [line for line in run.stderr.splitlines() if line.startswith("LEAKED=")] == ["LEAKED="], tails
        report = json.loads(run.stdout)
        assert report["execution"] == "remote" and report["status"] == "success", tails
        assert [p["phase"] for p in report["phases"]] == project.phase_names()
        assert all(p["done"] for p in report["phases"]), tails

        runs = RunHistory(store).list(correlation_id=report["correlation_id"], limit=None)
        enabled = sorted(p.name for p in project.processors.values() if p.enabled)
        assert sorted({r.processor for r in runs}) == enabled and {r.status for r in runs} <= {"success", "no_data"}
        assert {r["processor"] for p in report["phases"] for r in p["runs"]} == set(enabled)
        triggers = [line for line in wlog.read_text(errors="replace").splitlines() if '"route": "trigger"' in line]
        assert len(triggers) >= len(project.phases)  # every phase's trigger was answered by the worker
        last = project.processors[enabled[-1]] if which == "shop" else project.processors["player_prop_predictions"]
        assert wh.query(f"SELECT COUNT(*) AS n FROM {last.output.fqn}")[0]["n"] > 0  # noqa: S608 - a manifest name

        # a second run of the same date: nothing changed, the worker says so and the run ends
        again = _cli(root, "run", "--date", date, "--fast-forward", "--timeout", "300", "--json", timeout=400)
        assert again.returncode == 0, again.stdout[-2000:] + again.stderr[-2000:]
        second = json.loads(again.stdout)
        assert second["status"] == "success" and all(p["done"] for p in second["phases"])
    finally:
        for proc in procs:
            stop(proc)
        bus.close()
        wh.close()
        store.close()
