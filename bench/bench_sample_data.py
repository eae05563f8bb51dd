"""Benchmark the NBA example's sample data and SQL transforms on DuckDB.

Prints, measured in the same run:
  * generate()   - 1 day and ``--days`` days (default 160): seconds, rows, rows/s, and how the
                   time splits between the simulator and the DuckDB writes;
  * insert path  - one day of gamebook rows written with the columnar UNNEST insert the
                   generator uses vs the baseline ``executemany`` (ratio);
  * transforms   - every SQL transform of the last generated date as a full batch vs
                   selective for one player (and his team), rendered by framework.sql.render
                   (ratio). History comes from ``--history`` earlier dates run first.

    python bench/bench_sample_data.py                 # 160-day season
    python bench/bench_sample_data.py --days 30       # quicker
"""
from __future__ import annotations

import argparse
import sys
import time
from datetime import date, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import duckdb  # noqa: E402

from framework.graph.graph import PipelineGraph  # noqa: E402
from framework.manifest import load  # noqa: E402
from framework.sql.render import render_table_ddl, render_transform  # noqa: E402
from pipelines.nba_props import landing, sample_data  # noqa: E402

START = date(2025, 1, 6)


def _timed(fn, *args, **kwargs):
    t0 = time.perf_counter()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - t0


def bench_generate(days: int) -> None:
    for n in (1, days):
        con = duckdb.connect()
        counts, seconds = _timed(sample_data.generate, con, START, days=n)
        rows = sum(counts.values())
        world = sample_data.league()
        _, sim = _timed(lambda: [sample_data.day_rows_for(world, START + timedelta(days=k), 42) for k in range(n)])
        print(f"generate {n:>4} day(s): {seconds:7.2f} s  {rows:>8} rows  {rows / seconds:>9.0f} rows/s"
              f"  (simulation {sim:.2f} s, writes {max(seconds - sim, 0):.2f} s)")
        con.close()


def bench_insert() -> None:
    rows = sample_data.day_rows_for(sample_data.league(), START, 42)["nbac_gamebook"] * 20
    table = landing.load_sources()["nbac_gamebook"]
    con = duckdb.connect()
    landing.ensure_tables(con, [table])
    _, fast = _timed(landing.insert, con, table, rows)
    con.execute(f"DELETE FROM {table.fqn}")
    names = list(table.column_names)
    sql = f"INSERT INTO {table.fqn} ({', '.join(names)}) VALUES ({', '.join('?' for _ in names)})"
    _, slow = _timed(con.executemany, sql, [[r.get(n) for n in names] for r in rows])
    print(f"insert {len(rows)} gamebook rows: UNNEST {fast:.3f} s, executemany {slow:.3f} s  (executemany / UNNEST = {slow / fast:.1f}x)")


def bench_transforms(history: int) -> None:
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
    full = run_day(last, None)
    player = con.execute("SELECT player_lookup, team_abbr FROM nba_analytics.upcoming_player_game_context WHERE game_date = $d "
                         "ORDER BY player_lookup LIMIT 1", {"d": last}).fetchone()
    selective = run_day(last, [player[0], player[1]])
    print(f"{len(procs)} SQL transforms for {last} ({history} days of history): full batch {full:.3f} s, "
          f"one player ({player[0]}) + his team {selective:.3f} s  (full / selective = {full / selective:.1f}x)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=160)
    parser.add_argument("--history", type=int, default=20)
    args = parser.parse_args()
    bench_generate(args.days)
    bench_insert()
    bench_transforms(args.history)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
