"""`pipectl run` on an ``execution: remote`` target, end to end on the emulators.

The deployment as docs/gcp.md describes it, locally: `pipectl apply` creates the tables,
topics and the push subscriptions (triggers and fan-out tasks to a real worker process,
`python -m framework.worker`; completions to the orchestrator function bundle served by
functions-framework); then `pipectl --target gcp run --date D` publishes the first trigger
and follows. The run command runs in a process of its own, which must end with exit 0 and
must never have imported the processor runner: every processor ran in the worker.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from framework.backends.bigquery import BigQueryWarehouse
from framework.backends.firestore import FirestoreStateStore
from framework.backends.pubsub import PubSubBus
from framework.deploy.package import build_bundle
from framework.project import load
from framework.run.history import RunHistory
from framework.drive.session import default_sample_date, sample_module
from projects import copy_example

pytestmark = pytest.mark.gcp

PLAYERS = 3  # per team: the example's phases and processors, a CI-sized day
REPO = Path(__file__).resolve().parents[3]
PROBE = """
import sys
from framework.cli import main
code = main(sys.argv[1:])
leaked = sorted(m for m in sys.modules if m in ('framework.runtime.runner', 'framework.runtime.pipeline',
                                                'framework.runtime.fanout', 'framework.runtime.transform'))
print('LEAKED=' + ','.join(leaked), file=sys.stderr)
sys.exit(code)
"""


def _yaml(gcp_project: str, prefix: str, worker_port: int, function_port: int) -> str:
    return (f"targets:\n  gcp:\n    project: {gcp_project}\n    execution: remote\n"
            f"    warehouse: {{type: bigquery, timeout: 120}}\n    bus: {{type: pubsub}}\n"
            f"    state: {{type: firestore, prefix: {prefix}}}\n"
            f"    worker: {{url: 'http://127.0.0.1:{worker_port}'}}\n"
            f"    orchestrator: {{url: 'http://127.0.0.1:{function_port}/'}}\n")


def _env(**extra: str) -> dict[str, str]:
    env = {**os.environ, **extra}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH")) if p)
    return env


def test_remote_run_publishes_and_follows_while_the_worker_runs_every_processor(tmp_path: Path, uid: str) -> None:
    from worker_cluster import free_port, start_function, start_worker, stop, wait_listening

    gcp_project, prefix = f"rr-{uid}", f"{uid}_"
    wport, fport = free_port(), free_port()
    root = copy_example(tmp_path / "project", templates=True, pipectl_yaml=_yaml(gcp_project, prefix, wport, fport))
    project = load(root)
    date = default_sample_date(project)
    wh = BigQueryWarehouse(gcp_project, timeout=120)
    store = FirestoreStateStore(gcp_project, prefix=prefix)
    bus = PubSubBus(gcp_project)
    procs = []
    try:
        sample_module(project, "generate")(wh, date, days=1, seed=42, players_per_team=PLAYERS)
        # the run refuses to publish into pull subscriptions: nothing would consume them
        refused = subprocess.run([sys.executable, "-m", "framework.cli", "-p", str(root), "-t", "gcp", "run", "--date", date],
                                 env=_env(), capture_output=True, text=True, timeout=120)
        assert refused.returncode == 1 and "no worker receives the triggers" in refused.stderr, refused.stderr[-2000:]

        applied = subprocess.run([sys.executable, "-m", "framework.cli", "-p", str(root), "-t", "gcp", "apply", "--auto-approve"],
                                 env=_env(), capture_output=True, text=True, timeout=600)
        assert applied.returncode == 0, applied.stdout[-2000:] + applied.stderr[-3000:]
        trig = bus.get_subscription("nba-phase3-analytics-trigger-analytics")
        assert trig.push_endpoint == f"http://127.0.0.1:{wport}/trigger"
        assert bus.get_subscription("nba-prediction-requests-workers").push_endpoint == f"http://127.0.0.1:{wport}/task"

        flog, wlog = tmp_path / "function.log", tmp_path / "worker.log"
        procs.append(start_function(build_bundle(root, tmp_path / "dist").path, flog, fport))
        procs.append(start_worker(root, wlog, wport))
        wait_listening(fport, procs[0], flog)
        wait_listening(wport, procs[1], wlog)

        run = subprocess.run([sys.executable, "-c", PROBE, "-p", str(root), "-t", "gcp", "run", "--date", date,
                              "--fast-forward", "--timeout", "500", "--json"],
                             env=_env(), capture_output=True, text=True, timeout=600)
        tails = f"--- run\n{run.stderr[-3000:]}\n--- worker\n{wlog.read_text(errors='replace')[-3000:]}" \
                f"\n--- function\n{flog.read_text(errors='replace')[-2000:]}"
        assert run.returncode == 0, tails
        assert "LEAKED=\n" in run.stderr + "\n" and "LEAKED=" in run.stderr, tails  # the runner never loaded here
        assert [line for line in run.stderr.splitlines() if line.startswith("LEAKED=")] == ["LEAKED="], tails
        report = json.loads(run.stdout)
        assert report["execution"] == "remote" and report["status"] == "success", report
        assert [p["phase"] for p in report["phases"]] == project.phase_names() and all(p["done"] for p in report["phases"])

        # every enabled processor ran once, in the worker, under the run's correlation id
        runs = RunHistory(store).list(correlation_id=report["correlation_id"], limit=None)
        enabled = sorted(p.name for p in project.processors.values() if p.enabled)
        assert sorted(r.processor for r in runs) == enabled
        assert {r.status for r in runs} <= {"success", "no_data"}
        seen = {r["processor"] for p in report["phases"] for r in p["runs"]}
        assert seen == set(enabled)
        predictions = project.processors["player_prop_predictions"].output.fqn
        assert wh.query(f"SELECT COUNT(*) AS n FROM {predictions}")[0]["n"] > 0  # noqa: S608 - a manifest name
        # the trigger of every phase went through the worker (its delivery log), none through this process
        assert sum(1 for line in wlog.read_text(errors="replace").splitlines() if '"route": "trigger"' in line) >= len(project.phases)
    finally:
        for proc in procs:
            stop(proc)
        bus.close()
        wh.close()
        store.close()
