"""`pipectl ui` on a `gcp` target: the pages read Firestore (ledger, run history, alerts) and
Pub/Sub (dead letters) through the same library calls as on the embedded backends."""
from __future__ import annotations

import re
import warnings
from pathlib import Path

from framework.backends.registry import open_backends
from framework.alerts.alert_log import StoreSink
from framework.alerts import Alerts
from framework.run.history import RunHistory
from projects import PROCESSORS, SQL, TOPICS, write_project


def test_ui_pages_read_firestore_and_pubsub(tmp_path: Path, uid: str) -> None:
    rename = lambda text: text.replace("shop", uid)  # noqa: E731 - unique names on the shared emulators
    root = write_project(tmp_path / "proj", rename(PROCESSORS), rename(TOPICS), SQL)
    (root / "pipectl.yaml").write_text(f"""\
default_target: gcp
targets:
  gcp:
    project: ui-{uid}
    location: US
    warehouse: {{type: bigquery, timeout: 120}}
    bus: {{type: pubsub}}
    state: {{type: firestore, prefix: {uid}_}}
""")
    with open_backends(root, "gcp") as b:
        history = RunHistory(b.state)
        claim = history.start("orders_raw", "2025-01-01", phase="raw", correlation_id=f"c-{uid}")
        history.finish(claim.run, "failed", error="BackendError: table not found")
        Alerts([StoreSink(b.state)]).alert("processor_failed:orders_raw", "error", "orders_raw failed: table not found")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from starlette.testclient import TestClient
    from framework.ui.app import create_app

    c = TestClient(create_app(str(root), "gcp"))
    graph = c.get("/?partition=2025-01-01").text
    assert re.search(r'class="node status-failed[^"]*" data-name="orders_raw"', graph)
    processor = c.get("/processor/orders_raw").text
    assert "BackendError: table not found" in processor and "transform · bigquery" in processor
    cell = re.search(r'data-phase="raw" data-partition="2025-01-01" data-state="(\w+)" title="([^"]*)"', c.get("/partitions").text)
    assert cell and cell.group(1) == "failed" and "table not found" in cell.group(2)
    assert c.get(f"/trace/c-{uid}").text.count('<li class="hop') == 1
    alerts = c.get("/alerts")
    assert alerts.status_code == 200 and "orders_raw failed: table not found" in alerts.text
    assert "Dead letters" in alerts.text  # Pub/Sub asked (topics not applied: reported, not an error)
