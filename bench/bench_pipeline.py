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

Every scenario runs ``--rounds`` (>= 5) interleaved rounds of (full batch, one-player
update), each on its own consecutive date; the headline is the per-phase ratio of the medians, full batch
over incremental (the baseline of an incremental run is the full batch it replaces), so a
phase whose incremental run is slower than its full batch shows below 1x and is flagged.

Also prints the orchestrator-to-trigger latency per transition on the local bus: from the
moment the last processor of a phase published its completion to the moment the next
phase's worker pulled the trigger (completion consumed, ledger transaction, trigger
published, pulled).

    python bench/bench_pipeline.py                 # sample day + a 20-day season
    python bench/bench_pipeline.py --days 160      # the full season (several minutes)
    python bench/bench_pipeline.py --days 0        # sample day only
    python bench/bench_pipeline.py --days 0 --work # + what DuckDB did per phase (its profiler)

``--work`` adds, after the timed rounds, one more (full batch, update) pair per date with
DuckDB's profiler on (bench/duckdb_work.py): per phase the rows scanned, the execution CPU
and the planning time of every statement, full batch vs update. It separates the fixed cost
of a statement (planning, the same for one player or 450) from the work that grows with the
data, which is what a warehouse that bills scanned bytes charges for.
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

from benchlib import machine  # noqa: E402
from duckdb_work import WorkMeter  # noqa: E402
from framework.backends.protocols import QueryParam  # noqa: E402
from framework.drive.session import Session, backfill, generate_sample, run_partition, simulate_update  # noqa: E402

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


def measure(sess: Session, dates: list[str]) -> dict:
    """Interleaved rounds, one per date: a full batch of the date, then a one-player update
    of it. One date per round because a second full run of a date after an incremental one
    does not rerun downstream phases in full today (analytics reports no_data): see
    docs/performance.md."""
    player = None
    full_runs, updates = [], []
    for i, day in enumerate(dates):
        t0 = time.perf_counter()
        full = run_partition(sess, day, full=True, mode="full")
        full_runs.append((time.perf_counter() - t0, full))
        assert full.status == "success", full.to_dict()
        player = player_for(sess, day)
        bump = ((None, {"points": 41 + i, "fg_made": 16}), ("odds_api_player_points_props", {"points_line": 31.5 + i}))
        t0 = time.perf_counter()
        upd = simulate_update(sess, day, player, edits=bump)
        updates.append((time.perf_counter() - t0, upd))
        assert upd.report.status == "success", upd.report.to_dict()
    phases = {}
    for ph in full_runs[-1][1].phases:
        fulls = [r.phase(ph.phase).seconds for _, r in full_runs if r.phase(ph.phase) is not None]
        incs = [u.report.phase(ph.phase) for _, u in updates]
        last = updates[-1][1].report.phase(ph.phase)
        phases[ph.phase] = {
            "full": fulls,
            "inc": [p.seconds for p in incs if p is not None] or [0.0],
            "full_cpu": [r.phase(ph.phase).cpu_seconds for _, r in full_runs if r.phase(ph.phase) is not None],
            "inc_cpu": [p.cpu_seconds for p in incs if p is not None] or [0.0],
            "entities_full": ph.entities_processed,
            "entities_inc": max((p.entities_processed for p in incs if p is not None), default=0),
            "distinct_inc": last.distinct_entities() if last is not None else {},
        }
    latency = {}
    for rep in [r for _, r in full_runs] + [u.report for _, u in updates]:
        for ph in rep.phases:
            if ph.trigger_latency_seconds is not None:
                latency.setdefault(ph.phase, []).append(ph.trigger_latency_seconds)
    return {"player": player, "full_wall": [w for w, _ in full_runs], "inc_wall": [w for w, _ in updates],
            "phases": phases, "latency": latency, "rounds": len(dates)}


def measure_work(sess: Session, dates: list[str]) -> dict[str, dict[str, list]]:
    """One (full batch, one-player update) pair per date with DuckDB's profiler on: per phase
    the :class:`duckdb_work.Work` of each full batch and each update."""
    meter = WorkMeter()
    out: dict[str, dict[str, list]] = {}
    with meter.attach(sess.warehouse):
        for i, day in enumerate(dates):
            full = run_partition(sess, day, full=True, mode="full", progress=meter.progress)
            assert full.status == "success", full.to_dict()
            for phase, work in meter.take().items():
                out.setdefault(phase, {"full": [], "inc": []})["full"].append(work)
            player = player_for(sess, day)
            bump = ((None, {"points": 61 + i, "fg_made": 18}), ("odds_api_player_points_props", {"points_line": 41.5 + i}))
            upd = simulate_update(sess, day, player, edits=bump, progress=meter.progress)
            assert upd.report.status == "success", upd.report.to_dict()
            for phase, work in meter.take().items():
                out.setdefault(phase, {"full": [], "inc": []})["inc"].append(work)
    return out


def report_work(title: str, work: dict[str, dict[str, list]]) -> None:
    med = statistics.median
    print(f"\n-- {title}: what DuckDB did per phase (its profiler; median over dates, full batch -> one-player update) --")
    print(f"{'phase':<12} {'rows scanned':>24} {'ratio':>8} {'execution CPU ms':>20} {'ratio':>8} {'planning ms':>16} {'statements':>12}")
    for phase, sides in work.items():
        full, inc = sides["full"], sides["inc"] or []

        def m(xs: list, attr: str) -> float:
            return med([getattr(w, attr) for w in xs]) if xs else 0.0
        fr, ir = m(full, "rows"), m(inc, "rows")
        fe, ie = m(full, "exec_seconds") * 1000, m(inc, "exec_seconds") * 1000
        fp, ip = m(full, "plan_seconds") * 1000, m(inc, "plan_seconds") * 1000
        fs, is_ = m(full, "statements"), m(inc, "statements")
        rr = f"{fr / ir:.0f}x" if ir else "inf"
        er = f"{fe / ie:.1f}x" if ie else "inf"
        print(f"{phase:<12} {fr:>11,.0f} -> {ir:>9,.0f} {rr:>8} {fe:>9.1f} -> {ie:>7.1f} {er:>8} {fp:>7.1f} -> {ip:>6.1f} {fs:>5.0f} -> {is_:>4.0f}")


def _dates(start: str, offset: int, n: int) -> list[str]:
    import datetime as dt

    first = dt.date.fromisoformat(start) + dt.timedelta(days=offset)
    return [(first + dt.timedelta(days=k)).isoformat() for k in range(n)]


def _ratio(full: list[float], inc: list[float]) -> float:
    m = statistics.median(inc)
    return statistics.median(full) / m if m else float("inf")


def report(title: str, res: dict) -> None:
    med = statistics.median
    print(f"\n== {title} ({res['rounds']} interleaved rounds, one date each: full batch, then a one-player update; last player {res['player']}) ==")
    heads = ", ".join(f"{name} {_ratio(ph['full'], ph['inc']):.1f}x" for name, ph in res["phases"].items())
    print(f"full / incremental, per phase (median; target >= 20x each): {heads}")
    print(f"{'phase':<12} {'full min':>9} {'full med':>9} {'inc min':>9} {'inc med':>9} {'full/inc':>9}   entity-runs full -> incremental")
    for name, ph in res["phases"].items():
        ratio = _ratio(ph["full"], ph["inc"])
        kinds = ", ".join(f"{len(v)} {k}" for k, v in ph["distinct_inc"].items()) or "-"
        flag = "  << incremental SLOWER than full" if ratio < 1 else ""
        print(f"{name:<12} {min(ph['full']):>8.3f}s {med(ph['full']):>8.3f}s {min(ph['inc']):>8.3f}s {med(ph['inc']):>8.3f}s "
              f"{ratio:>8.1f}x   {ph['entities_full']} -> {ph['entities_inc']} ({kinds}){flag}")
    cpu = ", ".join(f"{name} {_ratio(ph['full_cpu'], ph['inc_cpu']):.1f}x" for name, ph in res["phases"].items())
    print(f"the same by CPU seconds of the process (median; robust to other load on the machine): {cpu}")
    print("  CPU medians full -> incremental: " + ", ".join(
        f"{name} {med(ph['full_cpu']):.3f}s -> {med(ph['inc_cpu']):.3f}s" for name, ph in res["phases"].items()))
    fw, iw = res["full_wall"], res["inc_wall"]
    print(f"{'whole run':<12} {min(fw):>8.3f}s {med(fw):>8.3f}s {min(iw):>8.3f}s {med(iw):>8.3f}s {_ratio(fw, iw):>8.1f}x   "
          f"(wall clock incl. bus + orchestrator; the update is {100 * med(iw) / med(fw):.1f}% of the full day, target <= 5%)")
    print("orchestrator-to-trigger latency on the local bus (median over runs):")
    for phase, values in res["latency"].items():
        print(f"  -> {phase:<12} {statistics.median(values) * 1000:8.1f} ms  (n={len(values)}, max {max(values) * 1000:.1f} ms)")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--days", type=int, default=20, help="season length for scenario B (160 = a season; 0 skips it)")
    ap.add_argument("--rounds", type=int, default=5, help="interleaved (full, update) rounds per scenario")
    ap.add_argument("--keep", action="store_true", help="keep the temporary project folder")
    ap.add_argument("--work", action="store_true", help="also profile one (full, update) pair per date with DuckDB's profiler")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.ERROR)
    print(f"machine: {machine()}")
    tmp = Path(tempfile.mkdtemp(prefix="pipectl-bench-"))
    try:
        root = copy_project(tmp / "day")
        with Session.open(root) as sess:
            generate_sample(sess, START, days=args.rounds)
            report("sample days: ~450 players, 0 to rounds-1 days of history", measure(sess, _dates(START, 0, args.rounds)))
            if args.work:
                report_work("sample days", measure_work(sess, _dates(START, 0, args.rounds)))
        if args.days > 0:
            root = copy_project(tmp / "season")
            with Session.open(root) as sess:
                import datetime as dt

                dates = _dates(START, args.days - 1, args.rounds)
                t0 = time.perf_counter()
                generate_sample(sess, START, days=args.days - 1 + args.rounds)
                gen = time.perf_counter() - t0
                t0 = time.perf_counter()
                before = (dt.date.fromisoformat(dates[0]) - dt.timedelta(days=1)).isoformat()
                bf = backfill(sess, START, before) if args.days > 1 else None
                took = time.perf_counter() - t0
                assert bf is None or not bf.failed, bf.failed
                done = len(bf.done) if bf else 0
                print(f"\nseason: generated {args.days - 1 + args.rounds} days in {gen:.1f}s; backfill of {done} dates "
                      f"(full batch, no triggers) in {took:.1f}s ({took / max(done, 1):.2f}s per date)")
                report(f"season: dates {args.days}..{args.days - 1 + args.rounds} of a season", measure(sess, dates))
                if args.work:
                    report_work("season", measure_work(sess, dates))
    finally:
        if args.keep:
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
