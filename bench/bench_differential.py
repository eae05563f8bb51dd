"""Differential figure: rounds of random landing edits, each followed by an incremental run
and `pipectl verify` (a from-scratch recompute of the partition, compared table by table).

Prints how many rounds left every table equal to a full recompute, and which tables differed
otherwise. Baseline: the same rounds on another copy of the example (``--project``, e.g. a
checkout before a fix), so the figure reads "before vs after".

    python bench/bench_differential.py [--rounds 20] [--seed 1] [--project DIR ...]
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


def run_rounds(root: Path, rounds: int, seed: int) -> tuple[int, Counter, float]:
    from framework.runtime.session import Session, generate_sample, run_date, sample_module
    from framework.runtime.verify import verify

    rng = random.Random(seed)
    equal, tables = 0, Counter()
    t0 = time.perf_counter()
    with Session.open(root) as sess:
        generate_sample(sess, START, days=DAYS)
        for day in ("2025-01-06", DAY):
            run_date(sess, day, full=True, mode="full")
        edit = sample_module(sess.project, "apply_random_edits")
        for i in range(rounds):
            edit(sess.warehouse, DAY, seed=rng.randrange(1 << 30), n_edits=rng.randint(3, 15))
            report = run_date(sess, DAY, mode="incremental")
            result = verify(sess.project, sess.warehouse, DAY)
            ok = result.ok and report.status == "success"
            equal += ok
            tables.update(t.processor for t in result.differing)
            print(f"  round {i + 1:>3}: run {report.status:<8} verify {'equal' if result.ok else 'DIFFERS: ' + ', '.join(t.processor for t in result.differing)}",
                  flush=True)
    return equal, tables, time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=20)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--project", action="append", type=Path, help="example copies to compare (default: this repository)")
    args = ap.parse_args()
    projects = args.project or [REPO]
    sys.path.insert(0, str(REPO))
    for src in projects:
        with tempfile.TemporaryDirectory() as tmp:
            root = copy_project(src.resolve(), Path(tmp) / "example")
            print(f"{src}: {args.rounds} rounds of random edits + incremental run + verify (seed {args.seed})", flush=True)
            equal, tables, seconds = run_rounds(root, args.rounds, args.seed)
            print(f"{src}: {equal} of {args.rounds} rounds equal to a full recompute ({seconds:.0f} s); "
                  f"differing tables: {dict(tables.most_common()) or 'none'}", flush=True)


if __name__ == "__main__":
    main()
