"""Benchmark the whole pipeline: full batch vs incremental (1 player changed), per phase.

Scenario A, the sample day: generate one game day, run it end to end in full batch through
the local bus and the orchestrator, then change one player's raw rows (stat correction +
points line) and run incrementally. Prints per phase the full-batch time, the incremental
time, the entities processed and the ratio.

Scenario B, a season (``--days``, 160 for a real season; smaller by default to keep the
run short): generate N days, backfill them (full batch, direct, no triggers), then run the
last date in full batch through the bus, then the same 1-player update incrementally. Late
in a season the rolling-history processors read every earlier game, so the full batch
grows while the incremental run still reads one player.

Also prints the orchestrator-to-trigger latency per transition on the local bus: from the
moment the last processor of a phase published its completion to the moment the next
phase's worker pulled the trigger (completion consumed, ledger transaction, trigger
published, pulled). Times are wall-clock medians of ``--repeat`` update runs.

    python bench/bench_pipeline.py                 # sample day + a 20-day season
    python bench/bench_pipeline.py --days 160      # the full season (several minutes)
    python bench/bench_pipeline.py --days 0        # sample day only
"""
from __future__ import annotations

import argparse
import logging
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from framework.backends.protocols import QueryParam  # noqa: E402
from framework.runtime.session import Session, backfill, generate_sample, run_date, simulate_update  # noqa: E402

START = "2025-01-06"
EDITS = ((None, {"points": 41, "fg_made": 16}), ("odds_api_player_points_props", {"points_line": 31.5}))


def copy_project(dest: Path) -> Path:
    dest.mkdir(parents=True)
    for name in ("processors.yaml", "topics.yaml"):
        shutil.copy(ROOT / name, dest / name)
    shutil.copytree(ROOT / "pipelines", dest / "pipelines", ignore=shutil.ignore_patterns("__pycache__"))
    return dest


def player_for(sess: Session, day: str) -> str:
    rows = sess.warehouse.query(
        "SELECT player_lookup FROM nba_raw.nbac_gamebook_player_stats g "
        "JOIN nba_raw.odds_api_player_points_props p USING (game_date, player_lookup) "
        "WHERE g.game_date = CAST($d AS DATE) AND g.minutes > 0 ORDER BY g.points DESC LIMIT 1",
        [QueryParam("d", day)])
    return rows[0]["player_lookup"]


def measure(sess: Session, day: str, repeat: int) -> dict:
    t0 = time.perf_counter()
    full = run_date(sess, day, full=True, mode="full")
    full_wall = time.perf_counter() - t0
    assert full.status == "success", full.to_dict()
    player = player_for(sess, day)
    updates = []
    for i in range(repeat):
        bump = ((None, {"points": 41 + i, "fg_made": 16}), ("odds_api_player_points_props", {"points_line": 31.5 + i}))
        t0 = time.perf_counter()
        upd = simulate_update(sess, day, player, edits=bump)
        updates.append((time.perf_counter() - t0, upd))
        assert upd.report.status == "success", upd.report.to_dict()
    inc_wall = statistics.median(w for w, _ in updates)
    phases = {}
    for ph in full.phases:
        inc = [u.report.phase(ph.phase) for _, u in updates]
        phases[ph.phase] = {
            "full": ph.seconds,
            "inc": statistics.median(p.seconds for p in inc if p is not None) if any(inc) else 0.0,
            "entities_full": ph.entities_processed,
            "entities_inc": max((p.entities_processed for p in inc if p is not None), default=0),
            "distinct_inc": updates[-1][1].report.phase(ph.phase).distinct_entities() if updates[-1][1].report.phase(ph.phase) else {},
        }
    latency = {}
    for rep in [full] + [u.report for _, u in updates]:
        for ph in rep.phases:
            if ph.trigger_latency_seconds is not None:
                latency.setdefault(ph.phase, []).append(ph.trigger_latency_seconds)
    return {"player": player, "full_wall": full_wall, "inc_wall": inc_wall, "phases": phases, "latency": latency}


def report(title: str, res: dict) -> None:
    print(f"\n== {title} (player {res['player']}) ==")
    print(f"{'phase':<12} {'full batch':>11} {'incremental':>12} {'ratio':>8}   entity-runs full -> incremental")
    for name, ph in res["phases"].items():
        ratio = ph["full"] / ph["inc"] if ph["inc"] else float("inf")
        kinds = ", ".join(f"{len(v)} {k}" for k, v in ph["distinct_inc"].items()) or "-"
        print(f"{name:<12} {ph['full']:>10.3f}s {ph['inc']:>11.3f}s {ratio:>7.1f}x   {ph['entities_full']} -> {ph['entities_inc']} ({kinds})")
    ratio = res["full_wall"] / res["inc_wall"] if res["inc_wall"] else float("inf")
    print(f"{'all phases':<12} {res['full_wall']:>10.3f}s {res['inc_wall']:>11.3f}s {ratio:>7.1f}x   (wall clock incl. bus + orchestrator)")
    print("orchestrator-to-trigger latency on the local bus (median over runs):")
    for phase, values in res["latency"].items():
        print(f"  -> {phase:<12} {statistics.median(values) * 1000:8.1f} ms  (n={len(values)}, max {max(values) * 1000:.1f} ms)")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--days", type=int, default=20, help="season length for scenario B (160 = a season; 0 skips it)")
    ap.add_argument("--repeat", type=int, default=3, help="incremental runs per scenario (median)")
    ap.add_argument("--keep", action="store_true", help="keep the temporary project folder")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.ERROR)
    tmp = Path(tempfile.mkdtemp(prefix="pipectl-bench-"))
    try:
        root = copy_project(tmp / "day")
        with Session.open(root) as sess:
            generate_sample(sess, START, days=1)
            report("sample day: 1 game day, ~450 players", measure(sess, START, args.repeat))
        if args.days > 0:
            root = copy_project(tmp / "season")
            with Session.open(root) as sess:
                import datetime as dt

                last = (dt.date.fromisoformat(START) + dt.timedelta(days=args.days - 1)).isoformat()
                t0 = time.perf_counter()
                generate_sample(sess, START, days=args.days)
                gen = time.perf_counter() - t0
                t0 = time.perf_counter()
                bf = backfill(sess, START, last)
                took = time.perf_counter() - t0
                assert not bf.failed, bf.failed
                print(f"\nseason: generated {args.days} days in {gen:.1f}s; backfill of {len(bf.done)} dates "
                      f"(full batch, no triggers) in {took:.1f}s ({took / max(len(bf.done), 1):.2f}s per date)")
                report(f"season: last date of {args.days} days", measure(sess, last, args.repeat))
    finally:
        if args.keep:
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
