"""DuckDBWarehouse against a real DuckDB file: the Warehouse protocol, transactions, error
translation, and sharing one file between processes by turns."""
from __future__ import annotations

import datetime as dt
import subprocess
import sys
import textwrap

import pytest

from framework.backends.duckdb import DuckDBWarehouse, split_statements
from framework.backends.protocols import QueryParam, Warehouse
from framework.errors import BackendError
from framework.manifest.model import Column, Table

T = Table("raw", "games", (Column("game_date", "DATE", "REQUIRED"), Column("team", "STRING"), Column("pts", "INT64"),
                           Column("tags", "STRING", "REPEATED"), Column("meta", "JSON"), Column("ratio", "NUMERIC")))


@pytest.fixture
def path(tmp_path):
    return str(tmp_path / "wh.duckdb")


def test_protocol_and_table_lifecycle(path):
    wh = DuckDBWarehouse(path)
    assert isinstance(wh, Warehouse) and wh.dialect == "duckdb"
    assert wh.table_schema("raw.games") is None and wh.list_tables("raw") == []
    wh.create_table(T)
    wh.create_table(T)  # idempotent
    schema = wh.table_schema("raw.games")
    assert [(c.name, c.type, c.mode) for c in schema] == [
        ("game_date", "DATE", "REQUIRED"), ("team", "STRING", "NULLABLE"), ("pts", "INT64", "NULLABLE"),
        ("tags", "STRING", "REPEATED"), ("meta", "JSON", "NULLABLE"), ("ratio", "NUMERIC", "NULLABLE")]
    assert wh.list_tables("raw") == ["games"]
    wh.create_dataset("empty")
    assert wh.list_tables("empty") == []


def test_several_datasets_listed_in_one_query_as_list_tables_lists_each(path):
    wh = DuckDBWarehouse(path)
    wh.create_table(T)
    wh.create_table(Table("other", "b", (Column("x", "INT64"),)))
    wh.query("CREATE VIEW other.a_view AS SELECT x FROM other.b")
    listed = wh.list_tables_in(["raw", "other", "missing"])
    assert listed == {"raw": ["games"], "other": ["a_view", "b"], "missing": []}
    assert {d: sorted(v) for d, v in listed.items()} == {d: wh.list_tables(d) for d in ("raw", "other", "missing")}


def test_insert_and_query_with_typed_params(path):
    wh = DuckDBWarehouse(path)
    wh.create_table(T)
    n = wh.insert_rows("raw.games", [
        {"game_date": "2024-01-15", "team": "LAL", "pts": 101, "tags": ["home"], "meta": {"ot": True}, "ratio": 0.5},
        {"game_date": dt.date(2024, 1, 15), "team": "BOS", "pts": None},
        {"game_date": dt.date(2024, 1, 16), "team": "O'Neal", "pts": 7},
    ])
    assert n == 3 and wh.insert_rows("raw.games", []) == 0
    rows = wh.query("SELECT team, pts, tags FROM raw.games WHERE game_date = $game_date AND team IN (SELECT UNNEST($entity_ids)) ORDER BY team",
                    [QueryParam("game_date", "2024-01-15", "DATE"), QueryParam("entity_ids", ["LAL", "BOS", "x"], array=True),
                     QueryParam("not_used", 1, "INT64")])
    assert rows == [{"team": "BOS", "pts": None, "tags": None}, {"team": "LAL", "pts": 101, "tags": ["home"]}]
    assert wh.query("SELECT team FROM raw.games WHERE team = $t", [QueryParam("t", "O'Neal")]) == [{"team": "O'Neal"}]
    assert wh.query("SELECT meta->>'ot' AS ot FROM raw.games WHERE team = 'LAL'") == [{"ot": "true"}]
    assert wh.query("CREATE TABLE raw.x (a INT)") == []


def test_execute_script_is_one_transaction(path):
    wh = DuckDBWarehouse(path)
    wh.create_table(T)
    wh.insert_rows("raw.games", [{"game_date": "2024-01-15", "team": "LAL", "pts": 1}])
    with pytest.raises(BackendError):
        wh.execute_script("DELETE FROM raw.games; INSERT INTO raw.nope VALUES (1);")
    assert wh.query("SELECT COUNT(*) AS n FROM raw.games") == [{"n": 1}]
    wh.execute_script("-- comment only;\nDELETE FROM raw.games WHERE team = $t; /* ; */ INSERT INTO raw.games (game_date, team) VALUES ($d, 'semi;colon')",
                      [QueryParam("t", "LAL"), QueryParam("d", "2024-01-20", "DATE")])
    assert wh.query("SELECT team FROM raw.games") == [{"team": "semi;colon"}]


def test_errors_name_the_table_and_the_fix(path):
    wh = DuckDBWarehouse(path)
    with pytest.raises(BackendError) as exc:
        wh.query("-- detect for p\nSELECT * FROM nba_raw.boxscores")
    assert "nba_raw.boxscores does not exist" in exc.value.message and exc.value.hint and "detect for p" in exc.value.message
    wh.create_table(T)
    with pytest.raises(BackendError) as exc:
        wh.query("SELECT points FROM raw.games")
    assert "points" in exc.value.message and "processors.yaml" in exc.value.hint
    with pytest.raises(BackendError) as exc:
        wh.query("SELEC 1")
    assert "pipectl render" in exc.value.hint


def test_split_statements():
    assert split_statements("a; 'x;y'; -- c;\n b ; /* ; */") == ["a", "'x;y'", "-- c;\n b"]


@pytest.mark.parametrize("script, statements", [
    ("SELECT 1;SELECT 2;", ["SELECT 1", "SELECT 2"]),
    ("SELECT 'it''s; fine'; SELECT 2", ["SELECT 'it''s; fine'", "SELECT 2"]),  # a doubled quote stays inside
    ('SELECT "a;b", `c;d` FROM t; x', ['SELECT "a;b", `c;d` FROM t', "x"]),
    ("SELECT 1 /* ';' -- */; SELECT 2", ["SELECT 1 /* ';' -- */", "SELECT 2"]),  # quotes inside comments do not open
    ("SELECT 1 -- it's; done\n; SELECT 2", ["SELECT 1 -- it's; done", "SELECT 2"]),
    ("SELECT 'open; never closed", ["SELECT 'open; never closed"]),
    ("SELECT 1; /* open; never closed", ["SELECT 1", "/* open; never closed"]),  # left for DuckDB to report
    ("-- only a comment;\n;\n/* and another */;", []),
    ("", []),
])
def test_split_statements_edge_cases(script, statements):
    assert split_statements(script) == statements


CHILD = textwrap.dedent("""
    import sys, time
    from framework.backends.duckdb import DuckDBWarehouse
    path, mode = sys.argv[1], sys.argv[2]
    if mode == "hold":
        wh = DuckDBWarehouse(path, keep_open=True)
        print("holding", flush=True)
        time.sleep(float(sys.argv[3]))
        wh.insert_rows("raw.games", [{"game_date": "2024-02-02", "team": "HOLD"}])
        wh.close()
    else:
        wh = DuckDBWarehouse(path)
        wh.insert_rows("raw.games", [{"game_date": "2024-02-01", "team": "CHILD"}])
        print(wh.query("SELECT COUNT(*) AS n FROM raw.games")[0]["n"])
""")


def test_processes_share_the_file_by_turns(path):
    wh = DuckDBWarehouse(path)  # per-use connections: nothing held between calls
    wh.create_table(T)
    wh.insert_rows("raw.games", [{"game_date": "2024-02-01", "team": "PARENT"}])
    out = subprocess.run([sys.executable, "-c", CHILD, path, "write"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "2"
    assert sorted(r["team"] for r in wh.query("SELECT team FROM raw.games")) == ["CHILD", "PARENT"]


def test_waits_for_a_lock_then_times_out_with_a_clear_error(path):
    DuckDBWarehouse(path).create_table(T)
    holder = subprocess.Popen([sys.executable, "-c", CHILD, path, "hold", "1.5"], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "holding"
        with pytest.raises(BackendError, match="locked by another process"):
            DuckDBWarehouse(path, lock_timeout=0.2).query("SELECT 1")
        rows = DuckDBWarehouse(path, lock_timeout=30).query("SELECT team FROM raw.games")  # waits for the holder
        assert rows == [{"team": "HOLD"}]
    finally:
        holder.wait(timeout=60)


def test_with_block_holds_one_connection(path):
    with DuckDBWarehouse(path) as wh:
        wh.create_table(T)
        con = wh._con
        wh.insert_rows("raw.games", [{"game_date": "2024-02-01", "team": "A"}])
        assert wh._con is con
    assert wh._con is None
    assert DuckDBWarehouse(path).query("SELECT COUNT(*) AS n FROM raw.games") == [{"n": 1}]


def test_memory_warehouse_keeps_its_data():
    wh = DuckDBWarehouse(":memory:")
    wh.create_table(T)
    wh.insert_rows("raw.games", [{"game_date": "2024-02-01", "team": "A"}])
    assert wh.query("SELECT team FROM raw.games") == [{"team": "A"}]


def test_insert_rows_quotes_table_and_column_names(path):
    """Names reach the INSERT quoted: a reserved-word table, a column with a space, and a row
    key that tries to close the column list all stay identifiers."""
    wh = DuckDBWarehouse(path)
    wh.execute_script('CREATE SCHEMA raw; CREATE TABLE raw."order" ("odd name" INTEGER, pts INTEGER)')
    assert wh.insert_rows("raw.order", [{"odd name": 1, "pts": 2}]) == 1
    assert wh.query('SELECT "odd name" AS n, pts FROM raw."order"') == [{"n": 1, "pts": 2}]
    with pytest.raises(BackendError):
        wh.insert_rows("raw.order", [{'pts) SELECT 9; DROP TABLE raw."order"; --': 1}])
    assert wh.list_tables("raw") == ["order"]


def test_drop_dataset_even_after_an_interrupted_transaction(path):
    wh = DuckDBWarehouse(path)
    with wh:
        wh.create_table(Table("scratch_x", "t", (Column("a", "INT64"),)))
        with wh._connection() as con:  # what a statement interrupted between BEGIN and COMMIT leaves
            con.execute("BEGIN TRANSACTION")
        wh.drop_dataset("scratch_x")
        assert wh.list_tables("scratch_x") == []
        wh.drop_dataset("scratch_x")  # idempotent
