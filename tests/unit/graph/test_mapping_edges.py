"""Entity-mapping tables in the graph: the writer of a mapping's table is upstream of every
processor whose detection reads the mapping (order, selection, downstream dispatch, renders),
and validate refuses a mapping its reader cannot see written first: a later phase, its own
output, a cycle; it warns for a disabled writer. Every diagnostic is asserted in full."""
from __future__ import annotations

import pytest

from framework.graph.graph import PipelineGraph
from framework.graph.render import processor_dot, processor_mermaid
from framework.manifest import load_project
from framework.validation import validate
from projects import REPO, ROSTER_FILES, ROSTER_PROCESSORS as RP, START_TOPIC, TOPICS, line_of, write_project

MAPPED_INPUT = "      - {source: visits_landing, mapping: customer_home_store}"


def _graph(tmp_path, manifest: str = RP) -> PipelineGraph:
    write_project(tmp_path, manifest, TOPICS + START_TOPIC, ROSTER_FILES)
    project, _ = load_project(tmp_path)
    return PipelineGraph(project)


def _diags(tmp_path, monkeypatch, manifest: str, *codes: str) -> list[str]:
    write_project(tmp_path, manifest, TOPICS + START_TOPIC, ROSTER_FILES)
    monkeypatch.chdir(tmp_path)
    return [str(d) for d in validate(tmp_path, check_sql=False).sorted() if not codes or d.code in codes]


def test_the_mapping_writer_is_upstream_of_its_reader(tmp_path) -> None:
    g = _graph(tmp_path)
    assert g.topological_order() == ["orders_raw", "store_roster", "home_store_visits", "customer_totals", "store_totals"]
    assert g.succ["store_roster"]["home_store_visits"] == {"critical": False, "mapping_only": True,
                                                           "mappings": ("customer_home_store",)}
    # a mapping table that is also an input keeps its input edge, with the mapping noted
    assert g.succ["orders_raw"]["store_totals"]["mappings"] == ("customer_store",)
    assert "mapping_only" not in g.succ["orders_raw"]["store_totals"]
    assert [(u.processor, u.mapping, u.writer_node) for u in g.mapping_uses] == [
        ("home_store_visits", "customer_home_store", "store_roster"), ("store_totals", "customer_store", "orders_raw")]


@pytest.mark.parametrize("selector, expected", [
    ("+home_store_visits", {"home_store_visits", "store_roster"}),
    ("store_roster+", {"store_roster", "home_store_visits"}),
    ("source:roster_landing+", {"store_roster", "home_store_visits"}),
    ("@store_roster", {"store_roster", "home_store_visits"}),
    ("1+home_store_visits", {"home_store_visits", "store_roster"}),
])
def test_selection_follows_mapping_edges(tmp_path, selector, expected) -> None:
    assert set(_graph(tmp_path).select([selector])) == expected


def test_a_mapping_read_from_a_source_selects_its_readers(tmp_path) -> None:
    g = _graph(tmp_path, RP.replace("to: store, via: store_roster}", "to: store, via: roster_landing}"))
    assert set(g.select(["source:roster_landing+"])) == {"store_roster", "home_store_visits"}
    assert g.upstream("home_store_visits", processors_only=False) == {"source:roster_landing", "source:visits_landing"}


def test_the_implicit_mapping_between_two_kinds_is_an_edge_too(tmp_path) -> None:
    # one mapping customer -> store: an input without `mapping:` is read through it
    only = RP.replace("  - {name: customer_store, from: customer, to: store, via: orders_raw}\n", "")
    only = only.replace("{processor: orders_raw, mapping: customer_store}", "{processor: orders_raw}")
    only = only.replace(MAPPED_INPUT, "      - {source: visits_landing}")
    g = _graph(tmp_path, only)
    assert set(g.pred["store_totals"]) == {"orders_raw", "store_roster"}
    assert g.succ["store_roster"]["home_store_visits"]["mappings"] == ("customer_home_store",)


def test_renders_draw_mapping_edges_dotted_with_the_mapping_name(tmp_path) -> None:
    g = _graph(tmp_path)
    assert '  store_roster -.->|"customer_home_store"| home_store_visits' in processor_mermaid(g).splitlines()
    assert '  "store_roster" -> "home_store_visits" [style=dotted, label="customer_home_store"];' in processor_dot(g).splitlines()


def test_the_example_orders_the_schedule_before_the_game_lines_it_maps_through() -> None:
    project, _ = load_project(REPO)
    g = PipelineGraph(project)
    assert g.succ["nbac_schedule"]["odds_api_game_lines"]["mappings"] == ("game_to_team",)
    assert "nbac_schedule" in g.select(["+odds_api_game_lines"])


def test_clean_fixture_validates(tmp_path, monkeypatch) -> None:
    assert _diags(tmp_path, monkeypatch, RP) == []


def test_a_mapping_written_in_a_later_phase_is_refused(tmp_path, monkeypatch) -> None:
    manifest = RP.replace("  - name: store_roster\n    phase: raw\n", "  - name: store_roster\n    phase: analytics\n")
    line = line_of(manifest, MAPPED_INPUT)
    assert _diags(tmp_path, monkeypatch, manifest, "mapping-from-later-phase", "cycle") == [
        f"processors.yaml:{line}:9: error: processor 'home_store_visits' (phase raw) maps input 'visits_landing' through "
        "entity mapping 'customer_home_store', whose table 'store_roster' writes in a later phase (analytics): when "
        "'home_store_visits' detects, the table still holds the previous run's pairs, so an incremental run misses "
        "entities a full recompute includes (map through a table written before 'home_store_visits' runs (a source, "
        "or a processor of phase 'raw' or earlier that does not read 'home_store_visits'): change the mapping's 'via', "
        "or point the input's 'mapping:' at another mapping, or move 'home_store_visits' to phase 'analytics' or later)"]


def test_a_mapping_through_the_readers_own_output_is_refused(tmp_path, monkeypatch) -> None:
    manifest = RP.replace("to: store, via: store_roster}", "to: store, via: home_store_visits}").replace(
        "        - {name: visits, type: INT64}\n", "        - {name: visits, type: INT64}\n        - {name: customer_id, type: STRING}\n")
    line = line_of(manifest, MAPPED_INPUT)
    assert _diags(tmp_path, monkeypatch, manifest) == [
        f"processors.yaml:{line}:9: error: processor 'home_store_visits' maps input 'visits_landing' through entity "
        "mapping 'customer_home_store', whose table is its own output: detection would map changes through its previous "
        "run's rows, and never reach an entity it did not output before (map through a table written before "
        "'home_store_visits' runs (a source, or a processor of phase 'raw' or earlier that does not read "
        "'home_store_visits'): change the mapping's 'via', or point the input's 'mapping:' at another mapping)"]


def test_a_cycle_closed_by_a_mapping_names_the_mapping_and_its_line(tmp_path, monkeypatch) -> None:
    manifest = RP.replace("      - source: roster_landing\n", "      - source: roster_landing\n      - home_store_visits\n")
    line = line_of(manifest, MAPPED_INPUT)
    assert _diags(tmp_path, monkeypatch, manifest, "cycle") == [
        f"processors.yaml:{line}:9: error: cycle: home_store_visits -> store_roster -> home_store_visits ('store_roster' "
        "-> 'home_store_visits' is an entity mapping: 'home_store_visits' maps input 'visits_landing' through entity "
        "mapping 'customer_home_store', whose table 'store_roster' writes, and 'store_roster' depends on "
        "'home_store_visits') (map through a table written before 'home_store_visits' runs (a source, or a processor "
        "of phase 'raw' or earlier that does not read 'home_store_visits'): change the mapping's 'via', or point the "
        "input's 'mapping:' at another mapping, or remove one of the inputs on the cycle)"]


def test_a_mapping_through_a_disabled_processor_warns(tmp_path, monkeypatch) -> None:
    manifest = RP.replace("  - name: store_roster\n    phase: raw\n", "  - name: store_roster\n    phase: raw\n    enabled: false\n")
    line = line_of(manifest, MAPPED_INPUT)
    assert _diags(tmp_path, monkeypatch, manifest, "mapping-via-disabled") == [
        f"processors.yaml:{line}:9: warning: processor 'home_store_visits' maps input 'visits_landing' through entity "
        "mapping 'customer_home_store', whose table 'store_roster' is disabled and never rewritten: changes are mapped "
        "through whatever rows it last held (enable 'store_roster', or map through a table that is written)"]


def test_the_ui_graph_draws_the_mapping_edge_dashed_with_its_name(tmp_path) -> None:
    from framework.ui.layout import lay_out

    edges = {(e.source, e.target): e for e in lay_out(_graph(tmp_path)).edges}
    assert edges[("store_roster", "home_store_visits")].mapping == "customer_home_store"
    assert edges[("orders_raw", "store_totals")].mapping == ""  # an input that is also the mapping table
    from jinja2 import Environment, PackageLoader

    svg = Environment(loader=PackageLoader("framework.ui", "templates")).get_template("_graph.html.j2").render(
        layout=lay_out(_graph(tmp_path)), link=lambda *a, **k: "#")
    assert ('class="edge mapping"' in svg
            and "<title>home_store_visits maps through store_roster (entity mapping customer_home_store)</title>" in svg)


def test_an_update_round_where_only_the_mapping_table_changed_dispatches_its_readers(tmp_path) -> None:
    """A late completion of the table's writer (a quorum fired without it, a roster move) opens
    an update round of the next phase for what is downstream of it: its mapping readers too."""
    from framework.backends.sqlite_state import SQLiteStateStore
    from framework.orchestrator.engine import Orchestrator

    # store_totals reads orders_raw through the only customer -> store mapping, via store_roster
    only = RP.replace("  - {name: customer_store, from: customer, to: store, via: orders_raw}\n", "")
    only = only.replace("{processor: orders_raw, mapping: customer_store}", "{processor: orders_raw}")
    project = _graph(tmp_path, only).project
    store = SQLiteStateStore(tmp_path / "ledger.sqlite")
    try:
        raw = next(t for t in project.transitions() if t.source_phase == "raw")
        orch = Orchestrator(project, store, bus=None)
        assert orch._dispatch(raw, {"store_roster"}, round_no=2) == ["store_totals"]
        assert orch._dispatch(raw, {"orders_raw"}, round_no=2) == ["customer_totals", "store_totals"]
    finally:
        store.close()


def test_the_lineage_page_lists_a_mapping_table_among_what_its_reader_reads(tmp_path) -> None:
    from framework.ui.static_site import lineage_rows

    g = _graph(tmp_path)
    rows = {r["name"]: r for r in lineage_rows(g.project, g)}
    assert rows["home_store_visits"]["reads"] == [
        {"name": "visits_landing", "kind": "source", "table": "landing.visits", "critical": False},
        {"name": "store_roster", "kind": "processor", "table": "shop_raw.store_roster", "critical": False,
         "mapping": "customer_home_store"}]
    assert rows["store_roster"]["read_by"] == ["home_store_visits"]
    via_source = _graph(tmp_path, RP.replace("to: store, via: store_roster}", "to: store, via: roster_landing}"))
    reads = {r["name"]: r for r in lineage_rows(via_source.project, via_source)}["home_store_visits"]["reads"]
    assert reads[-1] == {"name": "roster_landing", "kind": "source", "table": "landing.roster", "critical": False,
                         "mapping": "customer_home_store"}
