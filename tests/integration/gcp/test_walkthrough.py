"""docs/gcp.md "Deployment walk-through", command by command, on the emulators.

Every `pipectl` command of the walk-through runs here against a small project (the test
fixture project of tests/projects.py: the example's 137 resources take minutes to create on
the emulators, the commands are the same) with a `gcp` target on the BigQuery, Pub/Sub and Firestore emulators; Cloud Scheduler is
``CloudSchedulerStandIn`` (a LOCAL STAND-IN of its API: no emulator exists). Only the
`gcloud` commands (deploy, IAM) are not run: they need Google Cloud. The function's side is
tested in test_function_e2e.py, test_sweep_function.py and test_function_ops.py.
"""
from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from framework.cli import cli
from framework.project import load
from projects import PROCESSORS, SQL, TOPICS, write_project
from scheduler_standin import CloudSchedulerStandIn


def test_walkthrough_from_an_empty_project(tmp_path: Path, uid: str, monkeypatch) -> None:
    standin = CloudSchedulerStandIn()
    endpoint = standin.start()
    gcp = f"walk-{uid}"
    monkeypatch.setenv("SLACK_WEBHOOK_URL", "http://127.0.0.1:9/hook")  # by reference, never in the file
    rename = lambda text: text.replace("shop", uid)  # noqa: E731 - unique names on the shared emulators
    root = write_project(tmp_path / "proj", rename(PROCESSORS), rename(TOPICS), SQL)
    (root / "pipectl.yaml").write_text(f"""\
targets:
  gcp:
    project: {gcp}
    location: US
    warehouse: {{type: bigquery, timeout: 120}}
    bus: {{type: pubsub, scheduler_region: us-central1, scheduler_endpoint: "{endpoint}"}}
    state: {{type: firestore, prefix: {uid}_}}
alerts:
  max_per_window: 5
  window: 10m
  sinks:
    - {{type: log}}
    - {{type: webhook, url: {{env: SLACK_WEBHOOK_URL}}}}
""")
    transitions = [t for t in load(root).transitions() if t.completion_topic]

    def run(*args: str, code: int = 0) -> str:
        result = CliRunner().invoke(cli, ["-p", str(root), "--target", "gcp", *args])
        assert result.exit_code == code, f"pipectl {' '.join(args)} exited {result.exit_code}:\n{result.output}\n{result.exception!r}"
        return result.output

    try:
        # 1. validate: clean, no inline secret
        out = run("validate", "--no-sql")
        assert "inline-secret" not in out
        # 2. plan: everything to create, the sweep's schedule shown
        out = run("plan")
        assert f"+ schedule.pipectl-sweep-{uid}" in out and f'"* * * * *" (Etc/UTC) -> publishes to topic pipectl-sweep-{uid}' in out
        assert f"+ subscription.{uid}-dead-letter-pipectl" in out and f"+ topic.{uid}-raw-complete" in out
        # 3. apply, then nothing left to do
        out = run("apply", "--auto-approve")
        assert "Apply complete" in out
        assert "No changes" in run("plan")
        job = standin.jobs[f"projects/{gcp}/locations/us-central1/jobs/pipectl-sweep-{uid}"]
        assert job.pubsub_target.topic_name == f"projects/{gcp}/topics/pipectl-sweep-{uid}"
        # 4. package: the bundle and one deploy per transition plus the sweep function
        out = run("package", "--out", str(tmp_path / "dist"))
        assert "--entry-point=handle_sweep" in out and f"--trigger-topic=pipectl-sweep-{uid}" in out
        assert out.count("gcloud functions deploy") == len(transitions) + 1
        # 5. operate: status, a sweep by hand, dead letters
        run("status")
        assert json.loads(run("sweep", "--json")) == {"decisions": []}  # nothing open yet
        out = run("bus", "dead-letters")
        assert "0 dead letter(s)" in out and "warning" not in out  # every dead-letter topic has its subscription
        assert "0 dead letter(s) replayed" in run("bus", "replay-dead-letters")
    finally:
        standin.stop()
