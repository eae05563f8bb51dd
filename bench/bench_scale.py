"""How the example pipeline's cost grows: players x days of history, full batch vs one entity.

For every combination of ``--scales`` (1x = 30 teams / 450 players; 4x and 10x add
independent 30-team leagues, see pipelines/nba_props/sample_data.py) and ``--days`` (dates of
history before the measured date: the rolling-history processors read all of them), one
fresh child process:

  1. generates the landing data and backfills every earlier date (full batch, untimed);
  2. runs ``--rounds`` (>= 5) interleaved rounds, each on its own date (dates ``days`` to
     ``days + rounds - 1``): a full batch of every phase through the bus and the
     orchestrator, then a one-player update (his box score and points line edited) run
     incrementally;
  3. reports min and median of both, their ratio (the baseline of an incremental run is the
     full batch it replaces), the per-phase ratios and the process's peak RSS (DuckDB runs
     in-process, so its memory counts).

    python bench/bench_scale.py                          # 1x,4x,10x x 1,10,30 days (long)
    python bench/bench_scale.py --scales 1,4 --days 1,10 --rounds 5
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(HERE))

START = "2025-01-06"


def child(scale: int, days: int, rounds: int) -> dict:
    """One configuration, measured in this (fresh) process."""
    from bench_pipeline import copy_project, player_for
    from framework.drive.session import Session, backfill, run_partition, simulate_update
    from framework.drive.session import sample_module

    logging.basicConfig(level=logging.ERROR)
    from bench_pipeline import _dates

    dates = _dates(START, days - 1, rounds)
    tmp = Path(tempfile.mkdtemp(prefix="pipectl-scale-"))
    try:
        root = copy_project(tmp / "proj")
        with Session.open(root) as sess:
            t0 = time.perf_counter()
            counts = sample_module(sess.project, "generate")(sess.warehouse, START, days=days - 1 + rounds, seed=42, leagues=scale)
            gen = time.perf_counter() - t0
            t0 = time.perf_counter()
            if days > 1:
                prev = (dt.date.fromisoformat(dates[0]) - dt.timedelta(days=1)).isoformat()
                bf = backfill(sess, START, prev)
                assert not bf.failed, bf.failed
            history = time.perf_counter() - t0
            full_s, inc_s, phases = [], [], {}
            player = None
            for i, last in enumerate(dates):  # one date per round: see bench_pipeline.measure
                t0 = time.perf_counter()
                full = run_partition(sess, last, full=True, mode="full")
                full_s.append(time.perf_counter() - t0)
                assert full.status == "success", full.to_dict()
                player = player_for(sess, last)
                edits = ((None, {"points": 41 + i, "fg_made": 16}), ("odds_api_player_points_props", {"points_line": 31.5 + i}))
                t0 = time.perf_counter()
                upd = simulate_update(sess, last, player, edits=edits)
                inc_s.append(time.perf_counter() - t0)
                assert upd.report.status == "success", upd.report.to_dict()
                for ph in full.phases:
                    inc = upd.report.phase(ph.phase)
                    entry = phases.setdefault(ph.phase, {"full": [], "inc": []})
                    entry["full"].append(ph.seconds)
                    entry["inc"].append(inc.seconds if inc is not None else 0.0)
        players = sess_players(counts)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return {"scale": scale, "days": days, "players": players // (days - 1 + rounds), "rows": sum(counts.values()), "generate_s": gen,
            "history_s": history, "full": full_s, "inc": inc_s, "phases": phases,
            "peak_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def sess_players(counts: dict) -> int:
    """Players of the measured world: the roster snapshot has one row per player and date."""
    return counts.get("br_rosters", 0)


def _ratio(full: list[float], inc: list[float]) -> float:
    m = statistics.median(inc)
    return statistics.median(full) / m if m else float("inf")


def main() -> int:
    from benchlib import machine

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scales", default="1,4,10", help="player multipliers (leagues of 450 players)")
    ap.add_argument("--days", default="1,10,30", help="the first measured date is the Nth generated date (N-1 dates of history before it)")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--json", type=Path, help="also write the raw results here")
    ap.add_argument("--child", nargs=2, type=int, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(child(*args.child, args.rounds)))
        return 0
    print(f"machine: {machine()}; {args.rounds} interleaved rounds (full batch, one-player update) per row; "
          "each row in a fresh process")
    results = []
    print(f"{'players':>8} {'days':>5} {'full min':>9} {'full med':>9} {'upd min':>8} {'upd med':>8} {'full/upd':>9} "
          f"{'upd % full':>10} {'peak MiB':>9}   per phase full/upd (median)")
    for days in [int(x) for x in args.days.split(",")]:  # the cheap rows first
        for scale in [int(x) for x in args.scales.split(",")]:
            out = subprocess.run([sys.executable, __file__, "--rounds", str(args.rounds), "--child", str(scale), str(days)],
                                 capture_output=True, text=True)
            if out.returncode != 0:
                print(out.stdout[-3000:], out.stderr[-3000:], file=sys.stderr)
                return 1
            r = json.loads(out.stdout.strip().splitlines()[-1])
            results.append(r)
            full, inc = r["full"], r["inc"]
            per_phase = ", ".join(f"{k} {_ratio(v['full'], v['inc']):.1f}x" for k, v in r["phases"].items())
            print(f"{r['players']:>8} {days:>5} {min(full):>8.2f}s {statistics.median(full):>8.2f}s "
                  f"{min(inc):>7.2f}s {statistics.median(inc):>7.2f}s {_ratio(full, inc):>8.1f}x "
                  f"{100 * statistics.median(inc) / statistics.median(full):>9.1f}% {r['peak_mib']:>9.0f}   {per_phase}", flush=True)
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
