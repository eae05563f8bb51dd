"""Differential figure: sequences of random landing edits and incremental runs, each checked
with `pipectl verify` (a from-scratch recompute of the partition, compared table by table).

Prints how many sequences left every table equal to a full recompute, and which tables differed
otherwise. Besides the example's own random edits (stat corrections, injuries, props,
turnovers, deleted play-by-play rows), each round applies 1-3 of its ``apply_scraper_quirks``:
edits real scrapers make that the manifest-vs-SQL mismatches of issue 13 turned into stale
rows (a play-by-play row and an injury of a player not on the roster, a player whose
gamebook team differs from his roster team, a team code landed in lower case). Baseline: the same rounds on another copy of the example (``--project``, e.g. a
checkout before a fix), so the figure reads "before vs after".

    python bench/bench_differential.py [--sequences 20] [--max-rounds 5] [--seed 1] [--project DIR ...]

Each sequence starts from the same state (sample days, full runs), applies 1..max-rounds
rounds of edits, each followed by an incremental run, then runs `pipectl verify`.
"""
from __future__ import annotations

import argparse
import random
import shutil
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
START, DAYS, DAY = "2025-01-06", 2, "2025-01-07"


def copy_project(src: Path, dest: Path) -> Path:
    dest.mkdir(parents=True)
    for name in ("processors.yaml", "topics.yaml"):
        shutil.copy2(src / name, dest / name)
    shutil.copytree(src / "pipelines", dest / "pipelines", ignore=shutil.ignore_patterns("__pycache__"))
    return dest


def build_base(root: Path) -> None:
    """Sample days and full runs once; every sequence starts from a copy of this state."""
    from framework.drive.session import Session, generate_sample, run_partition

    with Session.open(root) as sess:
        generate_sample(sess, START, days=DAYS)
        for day in ("2025-01-06", DAY):
            run_partition(sess, day, full=True, mode="full")


def run_sequence(root: Path, rng: random.Random, max_rounds: int, edit, quirks) -> tuple[bool, list[str], list[str]]:
    """1..max_rounds rounds of edits + incremental run, then verify: (equal, differing, edits)."""
    from framework.drive.session import Session, run_partition
    from framework.run.verify import verify

    kinds: list[str] = []
    with Session.open(root) as sess:
        status = "success"
        for _ in range(rng.randint(1, max_rounds)):
            edit(sess.warehouse, DAY, seed=rng.randrange(1 << 30), n_edits=rng.randint(3, 15))
            kinds += [e.detail.split(" for ")[0] for e in quirks(sess.warehouse, DAY, seed=rng.randrange(1 << 30), n_edits=rng.randint(1, 3))]
            report = run_partition(sess, DAY, mode="incremental")
            status = report.status if report.status != "success" else status
        result = verify(sess.project, sess.warehouse, DAY)
    return result.ok and status == "success", [t.processor for t in result.differing], kinds


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sequences", type=int, default=20)
    ap.add_argument("--max-rounds", type=int, default=5)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--project", action="append", type=Path, help="example copies to compare (default: this repository)")
    args = ap.parse_args()
    projects = args.project or [REPO]
    sys.path.insert(0, str(REPO))
    # every project copy is edited by this checkout's edit generators (bound now, before a
    # project copy's own modules are imported): the baseline's example may predate
    # apply_scraper_quirks, and both must see the same edits
    from pipelines.nba_props.sample_edits import apply_random_edits, apply_scraper_quirks
    for src in projects:
        with tempfile.TemporaryDirectory() as tmp:
            base = copy_project(src.resolve(), Path(tmp) / "base")
            t0 = time.perf_counter()
            build_base(base)
            rng = random.Random(args.seed)
            equal, tables = 0, Counter()
            print(f"{src}: {args.sequences} sequences of 1-{args.max_rounds} rounds (random edits + incremental run), "
                  f"then verify (seed {args.seed})", flush=True)
            for i in range(args.sequences):
                root = Path(tmp) / f"seq{i}"
                shutil.copytree(base, root)
                ok, differing, kinds = run_sequence(root, rng, args.max_rounds, apply_random_edits, apply_scraper_quirks)
                shutil.rmtree(root)
                equal += ok
                tables.update(differing)
                print(f"  sequence {i + 1:>3}: {'equal' if ok else 'DIFFERS: ' + ', '.join(differing)}  ({', '.join(sorted(set(kinds)))})",
                      flush=True)
            print(f"{src}: {equal} of {args.sequences} sequences equal to a full recompute ({time.perf_counter() - t0:.0f} s); "
                  f"differing tables: {dict(tables.most_common()) or 'none'}", flush=True)


if __name__ == "__main__":
    main()
