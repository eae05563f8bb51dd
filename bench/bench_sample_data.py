"""Benchmark the NBA example's sample data and SQL transforms on DuckDB.

Prints, measured in the same run, each figure the min and median of ``--rounds`` (>= 5)
interleaved rounds and a ratio against a baseline run in the same rounds:
  * generate()   - 1 day and ``--days`` days written to an in-memory DuckDB, against the
                   simulator alone producing the same rows (``day_rows_for``, no I/O): the
                   ratio is what table creation and writes add on top of the simulation;
  * insert path  - 20 days' worth of gamebook rows (Python dicts) written with the columnar
                   UNNEST insert the generator uses, against DuckDB's bulk loader: the same
                   rows written to a CSV file with the csv module and ``COPY ... FROM`` (the
                   CSV writing is timed too: the rows start as Python dicts either way), and
                   a pyarrow table scan when pyarrow is installed;
  * transforms   - every SQL transform of the last generated date as a full batch against
                   the same transforms selective for one player (and his team), rendered by
                   framework.sql.render. History comes from ``--history`` earlier dates.

    python bench/bench_sample_data.py                 # 30 days, 5 rounds
    python bench/bench_sample_data.py --days 160      # a season (slow)
"""
from __future__ import annotations

import argparse
import csv
import os
import statistics
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import duckdb  # noqa: E402
from benchlib import machine  # noqa: E402

from framework.graph.graph import PipelineGraph  # noqa: E402
from framework.project import load  # noqa: E402
from framework.sql.render import render_table_ddl, render_transform  # noqa: E402
from pipelines.nba_props import landing, sample_data  # noqa: E402

START = date(2025, 1, 6)


def _timed(fn, *args, **kwargs):
    t0 = time.perf_counter()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - t0


def _line(label: str, times: list[float], base: list[float], base_label: str) -> str:
    return (f"{label:<44} min {min(times):7.3f} s  median {statistics.median(times):7.3f} s  "
            f"{statistics.median(times) / statistics.median(base):6.2f}x {base_label} (median; min {min(times) / min(base):.2f}x)")


def bench_generate(days: int, rounds: int) -> None:
    world = sample_data.league()
    for n in sorted({1, days}):
        gen, sim, rows = [], [], 0
        for _ in range(rounds):
            con = duckdb.connect()
            counts, seconds = _timed(sample_data.generate, con, START, days=n)
            con.close()
            gen.append(seconds)
            rows = sum(counts.values())
            sim.append(_timed(lambda: [sample_data.day_rows_for(world, START + timedelta(days=k), 42) for k in range(n)])[1])
        print(_line(f"generate {n} day(s), {rows} rows", gen, sim, "simulation alone"))
        print(_line(f"  baseline: simulation alone of {n} day(s)", sim, sim, "itself"))


def _copy_csv(con, table, rows, path: str) -> None:
    names = list(table.column_names)
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        for r in rows:
            w.writerow(["" if r.get(n) is None else r.get(n) for n in names])
    con.execute(f"COPY {table.fqn} ({', '.join(names)}) FROM '{path}' (FORMAT csv, HEADER false, NULLSTR '')")


def _arrow(con, table, rows) -> None:
    import pyarrow as pa

    names = list(table.column_names)
    frame = pa.table({n: [r.get(n) for r in rows] for n in names})  # noqa: F841 - scanned by name below
    con.execute(f"INSERT INTO {table.fqn} ({', '.join(names)}) SELECT {', '.join(names)} FROM frame")


def bench_insert(rounds: int) -> None:
    rows = [r for k in range(20) for r in sample_data.day_rows_for(sample_data.league(), START + timedelta(days=k), 42)["nbac_gamebook"]]
    table = landing.load_sources()["nbac_gamebook"]
    try:
        import pyarrow  # noqa: F401
        paths = ("unnest", "copy", "arrow")
    except ImportError:
        paths = ("unnest", "copy")
    times: dict[str, list[float]] = {k: [] for k in paths}
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(rounds):
            for path in paths:
                con = duckdb.connect()
                landing.ensure_tables(con, [table])
                if path == "unnest":
                    _, t = _timed(landing.insert, con, table, rows)
                elif path == "copy":
                    _, t = _timed(_copy_csv, con, table, rows, os.path.join(tmp, "rows.csv"))
                else:
                    _, t = _timed(_arrow, con, table, rows)
                assert con.execute(f"SELECT COUNT(*) FROM {table.fqn}").fetchone()[0] == len(rows)
                con.close()
                times[path].append(t)
    print(_line(f"insert {len(rows)} gamebook rows: UNNEST (pipectl)", times["unnest"], times["copy"], "CSV + COPY"))
    print(_line("  baseline: csv module + COPY FROM", times["copy"], times["copy"], "itself"))
    if "arrow" in times:
        print(_line("  pyarrow table + INSERT ... SELECT", times["arrow"], times["copy"], "CSV + COPY"))
    else:
        print("  (pyarrow not installed: the Arrow bulk path is not measured)")


def bench_transforms(history: int, rounds: int) -> None:
    project = load(ROOT)
    order = [project.processors[n] for n in PipelineGraph(project).topological_order()]
    procs = [p for p in order if p.enabled and p.transform.sql]
    con = duckdb.connect()
    sample_data.generate(con, START, days=history + 1)
    for p in project.processors.values():
        if p.output is not None:
            con.execute(f"CREATE SCHEMA IF NOT EXISTS {p.output.dataset}")
            con.execute(render_table_ddl(p.output, "duckdb"))
    last = START + timedelta(days=history)

    def run_day(day: date, entity_ids: list[str] | None) -> float:
        """Write each processor's rows as the runner does: delete (partition, entities), insert the SELECT."""
        total = 0.0
        for p in procs:
            sql = render_transform(project, p, "duckdb", full_batch=entity_ids is None)
            params = {"game_date": day, **({"entity_ids": entity_ids} if entity_ids is not None else {})}
            where = "" if entity_ids is None else f" AND {project.entity_key(p)} IN (SELECT UNNEST($entity_ids))"
            t0 = time.perf_counter()
            con.execute(f"DELETE FROM {p.output.fqn} WHERE game_date = $game_date{where}", params)
            con.execute(f"INSERT INTO {p.output.fqn} SELECT * FROM ({sql})", params)
            total += time.perf_counter() - t0
        return total

    for k in range(history):
        run_day(START + timedelta(days=k), None)
    run_day(last, None)
    player = con.execute("SELECT player_lookup, team_abbr FROM nba_analytics.upcoming_player_game_context WHERE game_date = $d "
                         "ORDER BY player_lookup LIMIT 1", {"d": last}).fetchone()
    full, selective = [], []
    for _ in range(rounds):
        full.append(run_day(last, None))
        selective.append(run_day(last, [player[0], player[1]]))
    print(_line(f"{len(procs)} SQL transforms, {history} days history: full batch", full, selective, "one player"))
    print(_line(f"  baseline: one player ({player[0]}) + his team", selective, selective, "itself"))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--history", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    print(f"machine: {machine()}, DuckDB {duckdb.__version__}; {args.rounds} interleaved rounds per figure")
    bench_generate(args.days, args.rounds)
    bench_insert(args.rounds)
    bench_transforms(args.history, args.rounds)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
