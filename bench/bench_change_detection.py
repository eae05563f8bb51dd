"""Benchmark change detection on DuckDB: N entities in one partition, 1 changed.

For each size, in the same DuckDB file and run:
  * pipectl   - ``detect_changes`` (rendered detect.sql.j2: per-entity fingerprints vs the
                processed-fingerprint state table), after ``record_processed`` stored the state;
  * baseline  - a plain column-by-column ``IS DISTINCT FROM`` FULL JOIN between the current
                rows and a full snapshot copy of the rows last processed (what a hand-written
                detector does; it needs that snapshot, pipectl stores only fingerprints).
Both must find exactly the one changed entity. Prints median seconds of ``--repeat`` runs
and the ratio pipectl / baseline, plus the one-off cost of recording the state.

    python bench/bench_change_detection.py                      # 450, 100k, 1M, 10M
    python bench/bench_change_detection.py --sizes 450,100000   # quicker
"""
from __future__ import annotations

import argparse
import datetime as dt
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from framework.backends.duckdb import DuckDBWarehouse  # noqa: E402
from framework.backends.protocols import QueryParam  # noqa: E402
from framework.project import load  # noqa: E402
from framework.run.changes import detect_changes, record_processed  # noqa: E402

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


def median_time(fn, repeat: int):
    times, result = [], None
    for _ in range(repeat):
        t0 = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), result


def bench(n: int, repeat: int, tmp: Path) -> dict:
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
    wh.execute_script("CREATE TABLE landing.stats_snapshot AS SELECT * FROM landing.stats")
    wh.execute_script("UPDATE landing.stats SET points = points + 1 WHERE player_lookup = 'player_7'")

    ours_s, cs = median_time(lambda: detect_changes(wh, project, "player_stats", D), repeat)
    assert not cs.full_batch, cs.fallback_reason
    assert cs.changed_keys == ["player_7"] and cs.total_entities == n, (cs.changed_keys, cs.total_entities)
    sql = BASELINE.format(distinct="\n   OR ".join(f"c.{c} IS DISTINCT FROM s.{c}" for c in COMPARED))
    base_s, rows = median_time(lambda: wh.query(sql, p[:1]), repeat)
    assert [r["entity_key"] for r in rows] == ["player_7"], rows
    wh.close()
    return {"n": n, "load": load_s, "record": record_s, "pipectl": ours_s, "baseline": base_s, "efficiency": cs.efficiency_pct}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="450,100000,1000000,10000000", help="comma-separated entity counts")
    ap.add_argument("--repeat", type=int, default=3, help="runs per measurement (median reported)")
    args = ap.parse_args()
    print(f"{'entities':>10} {'changed':>7} {'detect s':>9} {'baseline s':>10} {'ratio':>6} {'record s':>9} {'load s':>7} {'efficiency':>10}")
    with tempfile.TemporaryDirectory() as tmp:
        for n in (int(x) for x in args.sizes.split(",")):
            r = bench(n, args.repeat, Path(tmp))
            print(f"{r['n']:>10} {1:>7} {r['pipectl']:>9.4f} {r['baseline']:>10.4f} {r['pipectl'] / r['baseline']:>6.2f} "
                  f"{r['record']:>9.3f} {r['load']:>7.3f} {r['efficiency']:>9.4f}%", flush=True)


if __name__ == "__main__":
    main()
