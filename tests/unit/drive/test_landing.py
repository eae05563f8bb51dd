"""`pipectl load`: rows from a file into a declared source, checked before anything is written."""
from __future__ import annotations

import datetime as dt
import json

import pytest

from framework.cli import main
from framework.errors import ConfigError
from framework.drive.landing import read_rows, source_table
from framework.drive.session import Session
from framework.scaffold import init_project

CSV = "day,customer_id,store_id,amount\n2025-01-01,c1,s1,10.5\n2025-01-01,c2,,3\n2025-01-02,c1,s2,7\n"


@pytest.fixture
def shop(tmp_path):
    return init_project(tmp_path / "shop").root


def _rows(root):
    with Session.open(root) as sess:
        return sess.warehouse.query("SELECT day, customer_id, store_id, amount FROM landing.orders ORDER BY day, customer_id")


def test_load_creates_the_table_types_the_values_and_replace_does_not_double(shop, capsys):
    (shop / "orders.csv").write_text(CSV)
    assert main(["-p", str(shop), "load", "orders_landing", str(shop / "orders.csv")]) == 0
    assert "loaded 3 rows into landing.orders (created) (2025-01-01: 2, 2025-01-02: 1)" in capsys.readouterr().out
    rows = _rows(shop)
    assert rows[1] == {"day": dt.date(2025, 1, 1), "customer_id": "c2", "store_id": None, "amount": 3.0}
    assert main(["-p", str(shop), "load", "orders_landing", str(shop / "orders.csv"), "--replace"]) == 0
    assert len(_rows(shop)) == 3
    assert main(["-p", str(shop), "load", "landing.orders", str(shop / "orders.csv")]) == 0  # by table name, appends
    assert len(_rows(shop)) == 6


def test_jsonl_and_json_arrays_load_too(shop, capsys):
    (shop / "a.jsonl").write_text('{"day": "2025-01-03", "customer_id": "c9", "amount": 1}\n\n')
    (shop / "b.json").write_text(json.dumps([{"day": "2025-01-04", "customer_id": "c8", "amount": 2.5}]))
    assert main(["-p", str(shop), "load", "orders_landing", str(shop / "a.jsonl"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["partitions"] == {"2025-01-03": 1}
    assert main(["-p", str(shop), "load", "orders_landing", str(shop / "b.json")]) == 0
    assert [r["customer_id"] for r in _rows(shop)] == ["c9", "c8"]


def test_every_bad_row_is_reported_with_its_line_and_nothing_is_written(shop, capsys):
    (shop / "bad.csv").write_text("day,customer_id,amount\n2025-01-01,,x\nnotadate,c1,1\n2025-01-01,c2,2\n")
    assert main(["-p", str(shop), "load", "orders_landing", str(shop / "bad.csv")]) == 1
    err = capsys.readouterr().err
    assert "3 row problem(s)" in err
    assert "bad.csv:2: column customer_id: is REQUIRED but empty" in err
    assert "bad.csv:2: column amount: 'x' is not a FLOAT64" in err
    assert "bad.csv:3: column day: 'notadate' is not a DATE" in err
    with Session.open(shop) as sess:
        assert sess.warehouse.table_schema("landing.orders") is None  # checked before the first write


def test_unknown_columns_sources_and_file_types_are_named(shop):
    with Session.open(shop) as sess:
        table = source_table(sess.project, "orders_landing")
        with pytest.raises(ConfigError, match=r"no source 'orders' .*\(sources: orders_landing\)"):
            source_table(sess.project, "orders")
    (shop / "x.csv").write_text("day,customer_id,colour\n2025-01-01,c1,red\n2025-01-01,c2,blue\n")
    with pytest.raises(ConfigError, match=r"(?s)1 row problem.*x.csv:1: unknown column\(s\) colour"):
        read_rows(shop / "x.csv", table)
    (shop / "x.txt").write_text("")
    with pytest.raises(ConfigError, match="unknown file type '.txt'"):
        read_rows(shop / "x.txt", table)
    (shop / "x.jsonl").write_text('{"day": "2025-01-01"}\n{oops\n')
    with pytest.raises(ConfigError, match=r"x.jsonl:2: not valid JSON"):
        read_rows(shop / "x.jsonl", table)


def test_update_entity_types_values_and_refuses_what_does_not_exist(shop):
    from framework.drive.landing import update_entity, write_rows

    with Session.open(shop) as sess:
        table = source_table(sess.project, "orders_landing")
        wh = sess.warehouse
        assert write_rows(wh, table, [{"day": dt.date(2025, 1, 1), "customer_id": "c1", "store_id": "s1", "amount": 1.0},
                                      {"day": dt.date(2025, 1, 2), "customer_id": "c1", "store_id": "s1", "amount": 2.0}]) is True
        assert update_entity(wh, table, {"day": "2025-01-01", "customer_id": "c1"}, {"amount": "7.5"}) == 1
        assert [r["amount"] for r in wh.query("SELECT amount FROM landing.orders ORDER BY day")] == [7.5, 2.0]
        with pytest.raises(ValueError, match="has no row where day = 2025-01-03, customer_id = c1"):
            update_entity(wh, table, {"day": "2025-01-03", "customer_id": "c1"}, {"amount": 1})
        with pytest.raises(ValueError, match="has no column 'colour'"):
            update_entity(wh, table, {"day": "2025-01-01", "customer_id": "c1"}, {"colour": "red"})
        with pytest.raises(ValueError, match="'x' is not a FLOAT64"):
            update_entity(wh, table, {"day": "2025-01-01", "customer_id": "c1"}, {"amount": "x"})
        # replacing partitions: the rows of 2025-01-02 are rewritten, 2025-01-01 kept
        write_rows(wh, table, [{"day": dt.date(2025, 1, 2), "customer_id": "c2", "store_id": "s2", "amount": 3.0}],
                   replace_partitions_of="day")
        assert [(str(r["day"]), r["customer_id"]) for r in wh.query("SELECT day, customer_id FROM landing.orders ORDER BY day")] \
            == [("2025-01-01", "c1"), ("2025-01-02", "c2")]
