"""Benchmark change detection on DuckDB: N entities in one partition, 1 changed.

For each size, in the same DuckDB file, rounds interleaved (each round runs every contender
once, in turn), min and median of ``--rounds``:

* ``pipectl``      - ``detect_changes`` as the runner calls it: render detect.sql.j2, run it
                     against the processed-fingerprint state that ``record_processed`` stored;
                     multi-row (an entity's rows are fingerprinted as a multiset) and
                     multi-input semantics, inserts, deletes and the entity total;
* ``pipectl SQL``  - the same rendered statement alone (no Python rendering): for this
                     one-input processor the "rows joined" plan (the input's rows joined
                     with the state, entities of several rows grouped after the join);
* ``grouped SQL``  - the grouped plan (rows aggregated per entity, then joined: what every
                     processor with several inputs or a mapped input runs);
* ``IS DISTINCT``  - baseline: a column-by-column ``IS DISTINCT FROM`` FULL JOIN of the current
                     rows with a full snapshot of the rows last processed (a hand-written
                     detector; it needs that snapshot, pipectl stores one fingerprint per entity);
* ``stored hash``  - baseline: a FULL JOIN of the current rows' hash with a stored hash per
                     row (one row per entity assumed: no multi-row or multi-input semantics);
* ``floor: group`` - what multi-row semantics cost before comparing anything: scanning,
                     hashing and grouping the partition by entity (no join, no state).

Every contender must find exactly the one changed entity. Ratios are pipectl's over each
baseline (medians, then mins). 10,000,000 entities take about 3 GB of DuckDB memory and
minutes per round on 2 cores: ``--sizes 1000000,10000000``.

    python bench/bench_change_detection.py                        # 450, 100k, 1M
    python bench/bench_change_detection.py --sizes 1000000,10000000 --rounds 5
"""
from __future__ import annotations

import argparse
import os
import datetime as dt
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from framework.backends.duckdb import DuckDBWarehouse  # noqa: E402
from framework.backends.protocols import QueryParam  # noqa: E402
from framework.project import load  # noqa: E402
from framework.run.changes import detect_changes, record_processed  # noqa: E402
from framework.sql.render import query_params, render_statement  # noqa: E402

D = dt.date(2024, 1, 15)
COMPARED = ("points", "rebounds", "assists", "minutes", "status")

PROJECT = """\
version: 1
project: bench
partition: {column: game_date, type: DATE}
entity_kinds:
  player: {key: player_lookup, type: STRING}
sources:
  - name: stats
    table: landing.stats
    entity: player
    change_columns: [points, rebounds, assists, minutes, status]
    columns:
      - {name: game_date, type: DATE}
      - {name: player_lookup, type: STRING}
      - {name: points, type: INT64}
      - {name: rebounds, type: INT64}
      - {name: assists, type: INT64}
      - {name: minutes, type: FLOAT64}
      - {name: status, type: STRING}
      - {name: scraped_at, type: TIMESTAMP}
phases:
  - {name: analytics, order: 1, dataset: analytics}
processors:
  - name: player_stats
    phase: analytics
    entity: player
    inputs: [{source: stats}]
    output:
      table: player_stats
      columns:
        - {name: game_date, type: DATE}
        - {name: player_lookup, type: STRING}
    transform: {sql: t.sql}
"""

BASELINE = """
SELECT COALESCE(c.player_lookup, s.player_lookup) AS entity_key
FROM (SELECT * FROM landing.stats WHERE game_date = $game_date) AS c
FULL OUTER JOIN (SELECT * FROM landing.stats_snapshot WHERE game_date = $game_date) AS s
  ON c.player_lookup = s.player_lookup
WHERE c.player_lookup IS NULL OR s.player_lookup IS NULL
   OR {distinct}
"""


STORED_HASH = """
SELECT COALESCE(c.player_lookup, s.player_lookup) AS entity_key
FROM (SELECT player_lookup, hash({cols}) AS row_hash FROM landing.stats WHERE game_date = $game_date) AS c
FULL OUTER JOIN (SELECT player_lookup, row_hash FROM landing.stats_hashes WHERE game_date = $game_date) AS s
  ON c.player_lookup = s.player_lookup
WHERE c.player_lookup IS NULL OR s.player_lookup IS NULL OR c.row_hash <> s.row_hash
"""

FLOOR_GROUP = """
SELECT COUNT(*) AS entities FROM (
  SELECT player_lookup, COUNT(*) AS n, SUM(hash({cols})) AS s
  FROM landing.stats WHERE game_date = $game_date AND player_lookup IS NOT NULL GROUP BY player_lookup)
"""


def setup(n: int, tmp: Path):
    root = tmp / f"project_{n}"
    root.mkdir()
    (root / "processors.yaml").write_text(PROJECT)
    (root / "topics.yaml").write_text("version: 1\ntopics: []\n")
    (root / "t.sql").write_text("SELECT 1 AS x")
    project = load(root)
    wh = DuckDBWarehouse(tmp / f"bench_{n}.duckdb", keep_open=True)
    wh.create_table(project.sources["stats"].table)
    p = [QueryParam("game_date", D, "DATE"), QueryParam("n", n, "INT64")]
    t0 = time.perf_counter()
    wh.execute_script(
        "INSERT INTO landing.stats SELECT $game_date, 'player_' || i, i % 41, i % 17, i % 13, (i % 48) * 1.0, "
        "CASE WHEN i % 10 = 0 THEN NULL ELSE 'active' END, TIMESTAMP '2024-01-15 12:00:00' FROM range($n) AS t(i)", p)
    load_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    record_processed(wh, project, "player_stats", D, "bench", None)
    record_s = time.perf_counter() - t0
    cols = ", ".join(COMPARED)
    wh.execute_script("CREATE TABLE landing.stats_snapshot AS SELECT * FROM landing.stats")
    wh.execute_script(f"CREATE TABLE landing.stats_hashes AS SELECT game_date, player_lookup, hash({cols}) AS row_hash FROM landing.stats")
    wh.execute_script("UPDATE landing.stats SET points = points + 1 WHERE player_lookup = 'player_7'")
    return project, wh, load_s, record_s


def contenders(project, wh, n: int) -> dict:
    """name -> callable returning the changed keys (or, for the floor, None after checking)."""
    proc = project.processors["player_stats"]
    rendered = render_statement(project, proc, "detect", "duckdb")
    params = query_params(project, rendered.params, D, processor=proc.name)
    day = [QueryParam("game_date", D, "DATE")]
    cols = ", ".join(COMPARED)

    def pipectl():
        cs = detect_changes(wh, project, "player_stats", D)
        assert not cs.full_batch, cs.fallback_reason
        assert cs.total_entities == n, cs.total_entities
        return cs.changed_keys

    grouped = render_statement(project, proc, "detect", "duckdb", grouped=True)
    assert "rows joined" in rendered.sql and "rows joined" not in grouped.sql

    def pipectl_sql():
        rows = wh.query(rendered.sql, params)
        return [r["entity_key"] for r in rows if r["entity_key"] is not None]

    def grouped_sql():
        rows = wh.query(grouped.sql, params)
        return [r["entity_key"] for r in rows if r["entity_key"] is not None]

    def floor():
        assert wh.query(FLOOR_GROUP.format(cols=cols), day)[0]["entities"] == n
        return ["player_7"]

    distinct = BASELINE.format(distinct="\n   OR ".join(f"c.{c} IS DISTINCT FROM s.{c}" for c in COMPARED))
    return {
        "pipectl": pipectl,
        "pipectl SQL": pipectl_sql,
        "grouped SQL": grouped_sql,
        "IS DISTINCT": lambda: [r["entity_key"] for r in wh.query(distinct, day)],
        "stored hash": lambda: [r["entity_key"] for r in wh.query(STORED_HASH.format(cols=cols), day)],
        "floor: group": floor,
    }


def bench(n: int, rounds: int, tmp: Path) -> tuple[dict[str, list[float]], dict[str, list[float]], float, float]:
    """Wall and CPU seconds (of this process, every DuckDB thread) per contender and round."""
    project, wh, load_s, record_s = setup(n, tmp)
    runs = contenders(project, wh, n)
    times: dict[str, list[float]] = {k: [] for k in runs}
    cpu: dict[str, list[float]] = {k: [] for k in runs}
    for _ in range(rounds):
        for name, fn in runs.items():
            c0, t0 = time.process_time(), time.perf_counter()
            keys = fn()
            times[name].append(time.perf_counter() - t0)
            cpu[name].append(time.process_time() - c0)
            assert keys == ["player_7"], (name, keys)
    wh.close()
    return times, cpu, load_s, record_s


def table(title: str, times: dict[str, list[float]]) -> None:
    print(f"{title:<14} {'min':>9} {'median':>9} {'pipectl SQL / it (median)':>26} {'(min)':>7}"
          f" {'grouped SQL / it (median)':>26} {'(min)':>7}")
    ours, grouped = times["pipectl SQL"], times["grouped SQL"]
    for name, ts in times.items():
        ratios = [statistics.median(ours) / statistics.median(ts), min(ours) / min(ts),
                  statistics.median(grouped) / statistics.median(ts), min(grouped) / min(ts)]
        print(f"{name:<14} {min(ts):>9.4f} {statistics.median(ts):>9.4f} {ratios[0]:>26.2f} {ratios[1]:>7.2f}"
              f" {ratios[2]:>26.2f} {ratios[3]:>7.2f}", flush=True)


def main() -> None:
    from benchlib import machine

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="450,100000,1000000", help="comma-separated entity counts (10000000 works, slowly)")
    ap.add_argument("--rounds", type=int, default=5, help="interleaved rounds (min and median reported)")
    args = ap.parse_args()
    if args.rounds < 5:
        print("note: fewer than 5 rounds; medians are not robust", file=sys.stderr)
    print(f"machine: {machine()}; DuckDB, one partition, 1 changed entity; seconds")
    with tempfile.TemporaryDirectory() as tmp:
        for n in (int(x) for x in args.sizes.split(",")):
            times, cpu, load_s, record_s = bench(n, args.rounds, Path(tmp))
            print(f"\n{n:,} entities ({args.rounds} interleaved rounds; load {load_s:.2f} s, record state once {record_s:.2f} s; "
                  f"load average {os.getloadavg()[0]:.1f} at the end)")
            table("wall seconds", times)
            table("CPU seconds", cpu)


if __name__ == "__main__":
    main()
