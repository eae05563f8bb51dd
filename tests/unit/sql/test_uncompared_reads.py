"""validate warns when a transform reads an upstream column its change detection ignores
(an edit there would never reach the reader incrementally)."""
from __future__ import annotations

from framework.validation import validate
from projects import PROCESSORS, SQL, write_project


def _warnings(tmp_path, monkeypatch, processors=PROCESSORS, sql=None):
    write_project(tmp_path, processors, sql=sql)
    monkeypatch.chdir(tmp_path)
    return [str(d) for d in validate(tmp_path).items if d.code == "uncompared-read"]


def test_clean_fixture_reads_only_compared_columns(tmp_path, monkeypatch):
    assert _warnings(tmp_path, monkeypatch) == []


def test_unqualified_read_of_an_ignored_column(tmp_path, monkeypatch):
    p = PROCESSORS.replace("change_detection: {columns: [amount, store_id]}", "change_detection: {columns: [store_id]}")
    assert _warnings(tmp_path, monkeypatch, p) == [
        "processors.yaml:53:14: warning: processor 'customer_totals' reads orders_raw.amount, which the change detection of that "
        "input ignores: an edit there never reaches it incrementally (add 'amount' to orders_raw's change_detection.columns or to this input's compare)",
        "processors.yaml:66:9: warning: processor 'store_totals' reads orders_raw.amount, which the change detection of that "
        "input ignores: an edit there never reaches it incrementally (add 'amount' to orders_raw's change_detection.columns or to this input's compare)",
    ]


def test_compare_override_is_honoured_and_qualified_reads_found(tmp_path, monkeypatch):
    p = PROCESSORS.replace("inputs: [orders_raw]", "inputs: [{processor: orders_raw, compare: [store_id]}]")
    sql = dict(SQL)
    sql["sql/customer_totals.sql"] = ("SELECT o.day, o.customer_id, SUM(o.amount) AS total FROM {{ ref('orders_raw') }} o\n"
                                      "WHERE o.day = {{ partition }} AND {{ entity_filter('o.customer_id') }}\nGROUP BY o.day, o.customer_id\n")
    got = _warnings(tmp_path, monkeypatch, p, sql)
    assert len(got) == 1 and "processor 'customer_totals' reads orders_raw.amount" in got[0]
