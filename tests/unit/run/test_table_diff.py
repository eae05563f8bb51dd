"""The row comparison behind `pipectl verify`: order-insensitive, key-aware, float-tolerant."""
from __future__ import annotations

import math

from framework.run.table_diff import close, diff_rows

COLS = ["team", "pts", "rate"]


def rows(*values):
    return [dict(zip(COLS, v)) for v in values]


def test_order_does_not_matter_and_duplicates_count():
    a = rows(("A", 1, 0.5), ("B", 2, 0.25), ("B", 2, 0.25))
    d = diff_rows(a, list(reversed(a)), COLS, ["team"])
    assert d.equal and (d.incremental_rows, d.full_rows, d.keys) == (3, 3, 2)
    d = diff_rows(a, a[:2], COLS, ["team"])
    assert not d.equal and (d.keys_differing, d.only_incremental, d.only_full) == (1, 1, 0)
    assert d.samples[0].key == {"team": "B"} and d.samples[0].full is None


def test_floats_within_tolerance_are_equal_and_nan_equals_nan():
    a = rows(("A", 1, 0.1 + 0.2), ("B", 2, float("nan")))
    b = rows(("A", 1, 0.3), ("B", 2, float("nan")))
    assert diff_rows(a, b, COLS, ["team"], tolerance=1e-9).equal
    c = rows(("A", 1, 0.3001), ("B", 2, float("nan")))
    d = diff_rows(a, c, COLS, ["team"], tolerance=1e-9)
    assert not d.equal and d.changed == 1 and d.samples[0].columns == ["rate"]
    assert diff_rows(a, c, COLS, ["team"], tolerance=1e-3).equal


def test_values_straddling_a_rounding_boundary_still_match():
    a = rows(("A", 1, 0.12345649999))
    b = rows(("A", 1, 0.12345650001))
    assert diff_rows(a, b, COLS, ["team"], tolerance=1e-6).equal


def test_changed_row_is_shown_side_by_side_with_its_columns():
    d = diff_rows(rows(("MIN", 39, 0.5)), rows(("MIN", 45, 0.5)), COLS, ["team"])
    [pair] = d.samples
    assert pair.key == {"team": "MIN"} and pair.columns == ["pts"]
    assert (pair.incremental["pts"], pair.full["pts"]) == (39, 45)
    assert pair.to_dict()["incremental"]["pts"] == 39


def test_without_key_the_table_is_one_group_and_samples_are_capped():
    a = rows(*[("A", i, 0.0) for i in range(10)])
    b = rows(*[("A", i + 100, 0.0) for i in range(10)])
    d = diff_rows(a, b, COLS, (), sample=3)
    assert d.keys == 1 and d.changed == 10 and len(d.samples) == 3


def test_close():
    assert close(None, None, 0) and not close(None, 0, 1)
    assert close(1e12, 1e12 + 1, 1e-9) and not close(1.0, 1.1, 1e-9)
    assert close(math.nan, math.nan, 0) and close("x", "x", 0) and not close("x", "y", 1)
