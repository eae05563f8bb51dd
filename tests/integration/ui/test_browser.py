"""`pipectl ui` in a real browser: what a user sees and clicks, on the NBA example."""
from __future__ import annotations

import os
import shutil
from pathlib import Path

from framework.cli import main
from framework.project import load
from framework.drive.session import Session
from framework.drive.trace import build_trace
from tests.projects import REPO

GAME_DAY = "2025-01-09"


def test_pipeline_page_renders_one_node_per_processor(server: str, page, nba: Path, shots: Path) -> None:
    page.goto(server + "/")
    nodes = page.locator("svg.graph g.node")
    names = set(load(nba).processors)
    assert nodes.count() == len(names)
    assert set(nodes.evaluate_all("els => els.map(e => e.dataset.name)")) == names
    assert page.locator("svg.graph .lane-title").count() == len(load(nba).phases)
    enabled = page.locator("svg.graph g.node:not(.disabled)")
    statuses = set(enabled.evaluate_all("els => els.map(e => e.dataset.status)"))
    assert statuses and statuses <= {"success", "no_data", "partial"}, statuses  # coloured by the game day's runs
    disabled = {n for n, p in load(nba).processors.items() if not p.enabled}
    assert nodes.count() - enabled.count() == len(disabled)
    assert page.locator("select[name=partition]").input_value() == GAME_DAY
    page.screenshot(path=str(shots / "pipeline.png"), full_page=True)
    if os.environ.get("PIPECTL_UI_README_SHOT"):  # refresh the README's picture: PIPECTL_UI_README_SHOT=1 pytest ...
        shutil.copyfile(shots / "pipeline.png", REPO / "docs" / "img" / "ui-pipeline.png")


def test_selection_box_narrows_the_graph(server: str, page) -> None:
    page.goto(server + "/")
    page.fill("input[name=select]", "+player_game_summary")
    page.click("form.toolbar button")
    page.wait_for_url("**select=*")
    shown = set(page.locator("svg.graph g.node").evaluate_all("els => els.map(e => e.dataset.name)"))
    assert "player_game_summary" in shown and "nbac_gamebook_player_stats" in shown
    assert "ml_feature_store" not in shown


def test_clicking_a_node_shows_its_sql(server: str, page, shots: Path) -> None:
    page.goto(server + "/")
    page.locator('svg.graph g.node[data-name="player_game_summary"]').click()
    page.wait_for_url("**/processor/player_game_summary")
    sql = page.locator('details[data-kind="transform"][data-dialect="duckdb"] pre.sql-text')
    assert sql.is_visible()
    assert "SELECT" in sql.inner_text().upper()
    bigquery = page.locator('details[data-kind="transform"][data-dialect="bigquery"]')
    assert not bigquery.locator("pre").is_visible()  # folded until clicked
    bigquery.locator("summary").click()
    assert "@" in bigquery.locator("summary").inner_text() and bigquery.locator("pre").is_visible()
    assert page.locator("table.runs tr.run").count() >= 2  # the full day and the 2 PM update
    page.screenshot(path=str(shots / "processor.png"), full_page=True)


def test_trace_page_shows_every_hop_of_the_2pm_update(server: str, page, nba: Path, shots: Path) -> None:
    page.goto(server + "/traces")
    page.locator("table a").first.click()  # newest first: the demo's 2 PM update
    cid = page.url.rsplit("/", 1)[1]
    with Session.open(nba) as sess:
        tree = build_trace(sess.project, sess.backends.state, cid)

    def walk(node):
        for child in node.children:
            yield child
            yield from walk(child)

    hops = list(walk(tree))
    assert page.locator("li.hop").count() == len(hops)
    assert page.locator('li.hop[data-kind="trigger"]').count() == sum(1 for h in hops if h.kind == "trigger") == 5
    runs = page.locator('li.hop[data-kind="run"] > a').all_inner_texts()
    assert sorted(runs) == sorted(h.data["processor"] for h in hops if h.kind == "run")
    assert "lebronjames" in page.locator("ul.tree").inner_text()
    page.screenshot(path=str(shots / "trace.png"), full_page=True)


def test_partition_grid_turns_a_cell_failed_live_with_the_reason(server: str, page, nba: Path, shots: Path) -> None:
    page.goto(server + "/partitions")
    cells = page.locator("table.grid td.cell")
    assert page.locator("table.grid tr").count() == 1 + 4 and cells.count() == 4 * 5  # 4 dates x 5 phases
    assert set(cells.evaluate_all("els => els.map(e => e.dataset.state)")) == {"complete"}
    page.evaluate("window.__same_page = true")
    sql = nba / "pipelines" / "nba_props" / "precompute" / "player_composite_factors.sql"
    original = sql.read_text()
    sql.write_text(original.replace("SELECT", "SELECT no_such_column AS broken,", 1))
    try:
        assert main(["-p", str(nba), "run", "--date", GAME_DAY, "--from-phase", "precompute", "--full", "-q"]) == 1
    finally:
        sql.write_text(original)
    cell = page.locator(f'td.cell[data-partition="{GAME_DAY}"][data-phase="precompute"]')
    cell.and_(page.locator('[data-state="failed"]')).wait_for()  # htmx polling swapped it in
    assert page.evaluate("window.__same_page") is True  # updated in place, not reloaded
    reason = cell.get_attribute("title")
    assert "player_composite_factors" in reason and "no_such_column" in reason
    page.screenshot(path=str(shots / "partitions-failed.png"), full_page=True)
    cell.locator("a").click()
    page.wait_for_url(f"**/partition/{GAME_DAY}#precompute")
    assert "player_composite_factors" in page.locator("#precompute").inner_text()
