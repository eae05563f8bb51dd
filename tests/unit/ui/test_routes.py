"""Route tests of `pipectl ui` (Starlette's TestClient): every page shows what the library
API returns for the same question the CLI asks."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from framework.project import load
from framework.orchestrator.service import status
from framework.run.history import RunHistory
from framework.drive.session import Session
from framework.drive.trace import build_trace
from tests.unit.ui.ui_support import DATE, cli, client


def test_pipeline_page_draws_one_node_per_processor_coloured_by_its_last_run(project: Path) -> None:
    page = client(project).get("/")
    assert page.status_code == 200
    nodes = dict(re.findall(r'class="node status-(\w+)[^"]*" data-name="(\w+)"', page.text)[i][::-1]
                 for i in range(len(re.findall(r'data-name="', page.text))))
    assert set(nodes) == set(load(project).processors)
    with Session.open(project) as sess:
        last = {r.processor: r.status for r in reversed(RunHistory(sess.backends.state).list(partition=DATE, limit=None))}
    assert nodes == last
    assert f'<option value="{DATE}" selected>' in page.text
    assert 'hx-trigger="every 3.0s"' in page.text and 'src="/static/htmx.min.js"' in page.text


def test_selection_box_uses_the_cli_selection_and_reports_a_bad_one(project: Path) -> None:
    c = client(project)
    page = c.get("/", params={"select": "+customer_totals"})
    assert sorted(re.findall(r'data-name="(\w+)"', page.text)) == ["customer_totals", "orders_raw"]
    union = c.get("/", params={"select": "customer_totals store_totals"})
    assert sorted(re.findall(r'data-name="(\w+)"', union.text)) == ["customer_totals", "store_totals"]
    both = c.get("/", params={"select": "orders_raw+,phase:analytics"})  # comma: intersection, as the CLI
    assert sorted(re.findall(r'data-name="(\w+)"', both.text)) == ["customer_totals", "store_totals"]
    bad = c.get("/", params={"select": "customer_total"})
    assert bad.status_code == 400
    assert "no processor &#39;customer_total&#39;" in bad.text and "customer_totals" in bad.text


def test_processor_page_has_manifest_entry_sql_in_both_dialects_and_history(project: Path) -> None:
    page = client(project).get("/processor/store_totals")
    assert page.status_code == 200
    proc = load(project).processors["store_totals"]
    assert f"processors.yaml:{proc.location.line}" in page.text
    assert "name: store_totals" in page.text and "phase: analytics" in page.text
    for kind in ("detect", "transform", "merge"):
        for dialect in ("duckdb", "bigquery"):
            assert f'data-kind="{kind}" data-dialect="{dialect}"' in page.text
    assert "SUM(o.amount) AS total" in page.text  # the transform's own SQL
    from framework.sql.render import render_statement

    params = render_statement(load(project), "store_totals", "transform", "bigquery").params
    assert "transform · bigquery · parameters: " + ", ".join(f"@{p}" for p in params) in page.text
    assert page.text.count('class="run status-success"') == 1  # one run so far
    assert page.text.count("<details class=\"statement\"") == 6 and page.text.count(" open>") == 1
    assert client(project).get("/processor/nope").status_code == 404


def test_processor_page_of_a_python_transform_names_the_callable(tmp_path: Path) -> None:
    from tests.projects import copy_example

    root = copy_example(tmp_path / "nba")
    proc = next(p for p in load(root).processors.values() if p.transform.python)
    page = client(root).get(f"/processor/{proc.name}")
    assert page.status_code == 200 and '<p class="error">' not in page.text
    assert f"the Python callable <code>{proc.transform.python}</code>" in page.text
    assert 'data-kind="transform"' not in page.text
    fresh = client(root)  # nothing has run in this copy: every page still answers
    assert "(no runs yet)" in fresh.get("/").text and "no partition has run yet" in fresh.get("/partitions").text
    assert "no runs recorded" in fresh.get("/traces").text and "no alerts recorded" in fresh.get("/alerts").text
    assert proc.description
    manifest = root / "processors.yaml"  # an edit shows on the next request (the cache is keyed by file stamps)
    manifest.write_text(manifest.read_text().replace(proc.description, "Edited while the UI runs."))
    assert "Edited while the UI runs." in fresh.get(f"/processor/{proc.name}").text


def test_partitions_grid_and_partition_page_follow_status(project: Path) -> None:
    c = client(project)
    grid = c.get("/partitions")
    cells = re.findall(r'data-phase="(\w+)" data-partition="([\d-]+)" data-state="(\w+)"', grid.text)
    assert cells == [("raw", DATE, "complete"), ("analytics", DATE, "complete")]
    page = c.get(f"/partition/{DATE}")
    rows = status(str(project), None, DATE)
    assert [s.transition for s in rows] == re.findall(r'<h2>([\w>-]+) <span class="sub">', page.text.replace("&gt;", ">"))
    assert f"{rows[0].trigger_id} published" in page.text


def test_trace_page_shows_every_hop_of_build_trace(project: Path) -> None:
    c = client(project)
    [cid] = re.findall(r'/trace/(\w+)"', c.get("/traces").text)[:1]
    with Session.open(project) as sess:
        tree = build_trace(sess.project, sess.backends.state, cid)

    def count(node) -> int:
        return len(node.children) + sum(count(ch) for ch in node.children)

    page = c.get(f"/trace/{cid}")
    assert page.text.count('<li class="hop') == count(tree) > 3
    assert c.get("/trace/nothere").status_code == 404


def test_forced_failure_shows_failed_cell_with_reason_and_alert(project: Path, tmp_path: Path) -> None:
    sql = project / "sql" / "store_totals.sql"
    original = sql.read_text()
    sql.write_text(original.replace("SUM(o.amount) AS total", "SUM(o.no_such_amount) AS total"))
    try:
        assert cli(project, "run", "--date", DATE, "--from-phase", "analytics", "--full", "-q") == 1
    finally:
        sql.write_text(original)
    c = client(project)
    grid = c.get("/partitions").text
    cell = re.search(r'data-phase="analytics" data-partition="[\d-]+" data-state="(\w+)" title="([^"]*)"', grid)
    assert cell and cell.group(1) == "failed"
    assert "store_totals" in cell.group(2) and "no_such_amount" in cell.group(2)
    node = re.search(r'class="node status-(\w+)[^"]*" data-name="store_totals"', c.get("/").text)
    assert node and node.group(1) == "failed"
    alerts = c.get("/alerts").text
    assert "store_totals" in alerts and "no alerts recorded" not in alerts
    assert cli(project, "run", "--date", DATE, "--from-phase", "analytics", "--full", "-q") == 0  # fixed: green again for the tests after


def test_alert_log_keeps_suppressed_counts(project: Path) -> None:
    from framework.alerts.alert_log import StoreSink, recent_alerts
    from framework.alerts import Alerts

    with Session.open(project) as sess:
        alerts = Alerts([StoreSink(sess.backends.state)], max_per_window=1, window_seconds=60, clock=lambda: 1000.0)
        for _ in range(4):
            alerts.alert("processor_failed:demo", "error", "boom")
        alerts.flush(final=True)
        got = [a for a in recent_alerts(sess.backends.state) if a["signature"] == "processor_failed:demo"]
    assert sorted(a["suppressed"] for a in got) == [0, 3]
    assert "3 similar" in client(project).get("/alerts").text


@pytest.fixture
def dead_letter(project: Path):
    from framework.backends.localbus import LocalBus

    assert cli(project, "bus", "setup") == 0
    bus = LocalBus(project / ".pipectl" / "bus.sqlite")
    topic = next(t for t in load(project).topics if t.endswith("dead-letter"))
    source = next(t for t in load(project).topics if t.endswith("raw-complete"))
    bus.publish(topic, b'{"bad": 1}', {"rejected_by": "test", "rejected_from": f"{source}-orchestrator",
                                       "source_topic": source, "error": "missing field partition"})
    yield bus
    bus.purge_dead_letters(None)
    sub = f"{source}-orchestrator"  # the replayed junk must not reach the next test's runs
    for m in bus.pull(sub, max_messages=100):
        bus.ack(sub, [m.ack_id])
    bus.close()


def test_dead_letters_listed_and_actions_guarded(project: Path, dead_letter) -> None:
    ro = client(project)
    page = ro.get("/alerts").text
    assert "missing field partition" in page and "/actions/replay" not in page  # read-only: no buttons
    assert ro.post("/actions/sweep", data={"csrf": "x"}).status_code == 403
    rw = client(project, allow_actions=True)
    page = rw.get("/alerts").text
    csrf = re.search(r'name="csrf" value="(\w+)"', page).group(1)
    letter_id = re.search(r'name="id" value="(\w+)"', page).group(1)
    assert rw.post("/actions/replay", data={"id": letter_id}).status_code == 403  # no CSRF token
    evil = rw.post("/actions/replay", data={"id": letter_id, "csrf": csrf}, headers={"Origin": "http://evil.example"})
    assert evil.status_code == 403 and "cross-site" in evil.text
    ok = rw.post("/actions/replay", data={"id": letter_id, "csrf": csrf, "back": "/alerts"},
                 headers={"Origin": "http://testserver"}, follow_redirects=False)
    assert ok.status_code == 303 and ok.headers["location"] == "/alerts"
    actions = rw.app.state.actions
    for _ in range(200):
        if actions.last:
            break
        __import__("time").sleep(0.05)
    assert actions.last["ok"], actions.last
    assert f"replayed [{letter_id}]" in actions.last["detail"]
    assert f"replay {letter_id}" in rw.get("/alerts").text  # the outcome is shown on the pages


def _wait(actions) -> dict:
    import time

    for _ in range(600):
        if actions.last and not actions.current:
            return actions.last
        time.sleep(0.05)
    raise AssertionError(f"action still running: {actions.current}")


def test_rerun_and_sweep_actions_call_the_cli_functions(project: Path) -> None:
    rw = client(project, allow_actions=True)
    page = rw.get(f"/partition/{DATE}").text
    assert 'action="/actions/rerun"' in page
    csrf = re.search(r'name="csrf" value="(\w+)"', page).group(1)
    with Session.open(project) as sess:
        before = len(RunHistory(sess.backends.state).list(partition=DATE, limit=None))
    done = rw.post("/actions/rerun", data={"csrf": csrf, "partition": DATE, "from_phase": "analytics"},
                   headers={"Referer": f"http://testserver/partition/{DATE}"}, follow_redirects=False)
    assert done.status_code == 303
    last = _wait(rw.app.state.actions)
    assert last["ok"] and last["detail"] == f"run {DATE} from analytics: success", last
    with Session.open(project) as sess:
        after = RunHistory(sess.backends.state).list(partition=DATE, limit=None)
    assert len(after) == before + 2  # the two analytics processors ran again
    assert rw.post("/actions/sweep", data={"csrf": csrf}, follow_redirects=False).status_code == 303
    last = _wait(rw.app.state.actions)
    assert last["ok"] and last["detail"].startswith("sweep: "), last
    bad = rw.post("/actions/rerun", data={"csrf": csrf, "partition": DATE, "from_phase": "analytic"}, follow_redirects=False)
    assert bad.status_code == 303
    last = _wait(rw.app.state.actions)
    assert not last["ok"] and "analytic" in last["detail"], last  # the error is shown, not swallowed
    assert 'class="flash bad"' in rw.get("/partitions").text


def test_token_required_when_set(project: Path) -> None:
    c = client(project, token="s3cret")
    assert c.get("/").status_code == 401
    assert c.get("/", headers={"Authorization": "Bearer s3cret"}).status_code == 200
    first = c.get("/partitions", params={"token": "s3cret"})
    assert first.status_code == 200 and "pipectl_ui_token" in first.headers["set-cookie"]
    assert "samesite=strict" in first.headers["set-cookie"].lower()
    assert c.get("/traces").status_code == 200  # the cookie carries it from then on


def test_loopback_ui_refuses_foreign_host_names(project: Path) -> None:
    """DNS rebinding: a page on evil.example resolving to 127.0.0.1 must not read the UI."""
    c = client(project, allowed_hosts=["127.0.0.1", "localhost", "::1"])
    assert c.get("/partitions", headers={"Host": "evil.example:8765"}).status_code == 400
    assert c.get("/partitions", headers={"Host": "127.0.0.1:8765"}).status_code == 200
    assert c.get("/partitions", headers={"Host": "[::1]:8765"}).status_code == 200
