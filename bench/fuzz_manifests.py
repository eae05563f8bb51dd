"""Fuzz `validate` with seeded mutants of the example manifests; report what escaped.

Each case mutates processors.yaml / topics.yaml of the example project (1-3 mutations:
see tests/fuzz.py), validates it with the SQL checks under a per-case CPU-time limit (a
shared machine must not fake a hang), and classifies the outcome. Case ``i`` is seeded
with ``(seed, i)`` alone, so any case can be replayed by itself (``--only I``) and the
cases can be spread over ``--workers`` processes with the same result. Printed at the end:
cases, tracebacks, internal errors, hangs over the limit, errors without a file:line,
ill-formed JSON/JUnit/SARIF, per-case wall and CPU time (median, max, the slowest case),
and peak memory (ru_maxrss of the largest process).

    python bench/fuzz_manifests.py --cases 10000 --seed 12 [--workers 3] [--no-sql] [--limit 10] [--show 5]

Exit status 1 if any case failed, so the run can gate a release.
"""
from __future__ import annotations

import argparse
import multiprocessing
import random
import resource
import shutil
import statistics
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))

_STATE: dict = {}


def _init(parent: str, no_sql: bool, limit: float) -> None:
    from fuzz import example_manifests

    root = Path(tempfile.mkdtemp(dir=parent)) / "proj"  # one project per process, removed with parent
    root.mkdir()
    shutil.copytree(REPO / "pipelines", root / "pipelines", ignore=shutil.ignore_patterns("__pycache__"))
    _STATE.update(root=root, originals=example_manifests(REPO), no_sql=no_sql, limit=limit)


def _case(args: tuple[int, int]) -> tuple[int, str, str, float, float, float]:
    from fuzz import check_validate, mutate

    seed, i = args
    mutant = mutate(random.Random(f"{seed}-{i}"), _STATE["originals"])
    t0, c0 = time.perf_counter(), time.process_time()
    outcome = check_validate(_STATE["root"], mutant, time_limit=_STATE["limit"], check_sql=not _STATE["no_sql"])
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    detail = outcome.detail if outcome.kind != "ok" else " ".join(mutant.steps)
    return i, outcome.kind, detail, wall, cpu, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--cases", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=12)
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--only", type=int, default=None, help="replay one case")
    ap.add_argument("--limit", type=float, default=10, help="CPU seconds per case before it counts as a hang")
    ap.add_argument("--no-sql", action="store_true", help="skip the SQL render+parse checks")
    ap.add_argument("--show", type=int, default=5, help="failures to print in full")
    args = ap.parse_args()

    todo = [(args.seed, args.only)] if args.only is not None else [(args.seed, i) for i in range(args.cases)]
    kinds: Counter = Counter()
    failures, walls, cpus, peaks = [], [], [], []
    slowest = (0.0, "")
    t_all = time.perf_counter()
    parent = tempfile.TemporaryDirectory(prefix="pipectl-fuzz-")
    if args.workers > 1:
        pool = multiprocessing.get_context("fork").Pool(args.workers, _init, (parent.name, args.no_sql, args.limit))
        results = pool.imap_unordered(_case, todo, chunksize=8)
    else:
        _init(parent.name, args.no_sql, args.limit)
        pool, results = None, map(_case, todo)
    for n, (i, kind, detail, wall, cpu, peak) in enumerate(results, start=1):
        kinds[kind] += 1
        walls.append(wall)
        cpus.append(cpu)
        peaks.append(peak)
        if cpu > slowest[0]:
            slowest = (cpu, f"case {i}: {detail if kind == 'ok' else kind}")
        if kind != "ok":
            failures.append((i, kind, detail))
        if n % 500 == 0:
            print(f"  {n} cases, {len(failures)} failures, {time.perf_counter() - t_all:.0f}s", file=sys.stderr, flush=True)
    if pool is not None:
        pool.close()
        pool.join()
    parent.cleanup()
    total = time.perf_counter() - t_all
    print(f"fuzz_manifests: seed {args.seed}, {len(todo)} cases, {args.workers} worker(s), SQL checks "
          f"{'off' if args.no_sql else 'on'}, {total:.0f}s total")
    print(f"  ok (validate returned, errors located, outputs valid): {kinds['ok']}")
    for kind in ("traceback", "internal", "hang", "unlocated", "bad-output"):
        print(f"  {kind:<10} {kinds[kind]}")
    print(f"  per case, wall: median {statistics.median(walls):.3f}s max {max(walls):.3f}s")
    print(f"  per case, CPU:  median {statistics.median(cpus):.3f}s max {max(cpus):.3f}s (hang limit {args.limit:g} CPU s; "
          f"slowest {slowest[1]})")
    print(f"  peak memory (RSS of the largest process): {max(peaks + [resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024]):.0f} MB")
    for i, kind, detail in sorted(failures)[: args.show]:
        print(f"\n--- case {i}: {kind} (replay: --seed {args.seed} --only {i})\n{detail[-3000:]}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
