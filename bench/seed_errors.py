"""Seed SQL errors of several rule classes into a project made by ``bench/gen_manifest.py``.

Why: a speed change to ``pipectl validate`` must leave its output byte-identical, and a
generated project is clean, so comparing its output proves little about the paths that
report. This edits every ``--every``-th transform file (deterministically, by file order)
with one of these faults, in turn:

* ``sql-parse``: an unbalanced parenthesis after ``WHERE``;
* ``unknown-column``: a joined input's column renamed to one it does not declare;
* ``sql-render``: ``ref()`` of a processor that does not exist;
* ``sql-render``: a Jinja syntax error (an unclosed call);
* ``transform-columns``: the last output column dropped from the SELECT;
* ``uncompared-read``: a joined input's column its change detection ignores;
* ``sql-parse`` (derived): ``ARRAY_AGG(... LIMIT n)``, which DuckDB cannot express.

    python bench/seed_errors.py DIR [--every 7]

Then ``pipectl -p DIR validate --format json`` before and after a change, and compare.
"""
from __future__ import annotations

import argparse
import re
from pathlib import Path


def _parse(sql: str) -> str:
    return sql.replace("WHERE ", "WHERE ) ", 1)


def _unknown_column(sql: str) -> str:
    return re.sub(r"\bt0\.(m\d|v\d)\b", "t0.no_such_column", sql, count=1)


def _unknown_ref(sql: str) -> str:
    return re.sub(r"(ref|source)\('[^']+'\)", "ref('no_such_processor')", sql, count=1)


def _jinja(sql: str) -> str:
    return sql.replace("}}", "", 1)


def _missing_output(sql: str) -> str:
    return re.sub(r",\n[^\n]*AS m5\n", "\n", sql, count=1)


def _uncompared(sql: str) -> str:
    return re.sub(r"\bt0\.m0\b", "t0.m4", sql, count=1)


def _not_duckdb(sql: str) -> str:
    return sql.replace("SELECT t0.day, t0.item_id,", "SELECT t0.day, t0.item_id, ARRAY_AGG(t0.item_id LIMIT 2) AS extra,", 1)


FAULTS = (_parse, _unknown_column, _unknown_ref, _jinja, _missing_output, _uncompared, _not_duckdb)


def seed(root: Path, every: int = 7) -> int:
    """Apply the faults in turn to every ``every``-th transform; returns how many files changed."""
    changed = 0
    for i, path in enumerate(sorted((root / "sql").glob("*.sql"))):
        if i % every:
            continue
        text = path.read_text()
        new = FAULTS[(i // every) % len(FAULTS)](text)
        if new != text:
            path.write_text(new)
            changed += 1
    return changed


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("root", type=Path)
    ap.add_argument("--every", type=int, default=7)
    args = ap.parse_args()
    print(f"{seed(args.root, args.every)} transform files changed")
