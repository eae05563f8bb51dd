"""Fuzz `validate` with seeded mutants of the example manifests; report what escaped.

Each case mutates processors.yaml / topics.yaml of the example project (1-3 mutations:
see tests/fuzz.py), validates it with the SQL checks in this process under a per-case
CPU-time limit (a shared machine must not fake a hang), and classifies the outcome.
Printed at the end: cases, tracebacks, internal errors, hangs over the limit, errors
without a file:line, ill-formed JSON/JUnit/SARIF, per-case wall and CPU time (min, median,
max, the slowest case), and the process's peak memory (ru_maxrss).

    python bench/fuzz_manifests.py --cases 10000 --seed 12 [--no-sql] [--limit 10] [--show 5]

Exit status 1 if any case failed, so the run can gate a release.
"""
from __future__ import annotations

import argparse
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


def main() -> int:
    from fuzz import check_validate, example_manifests, mutate

    ap = argparse.ArgumentParser()
    ap.add_argument("--cases", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=12)
    ap.add_argument("--limit", type=float, default=10, help="CPU seconds per case before it counts as a hang")
    ap.add_argument("--no-sql", action="store_true", help="skip the SQL render+parse checks")
    ap.add_argument("--show", type=int, default=5, help="failures to print in full")
    args = ap.parse_args()

    originals = example_manifests(REPO)
    rng = random.Random(args.seed)
    kinds: Counter = Counter()
    failures = []
    times: list[float] = []
    cpu: list[float] = []
    slowest = (0.0, "")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "proj"
        root.mkdir()
        shutil.copytree(REPO / "pipelines", root / "pipelines", ignore=shutil.ignore_patterns("__pycache__"))
        t_all = time.perf_counter()
        for i in range(args.cases):
            mutant = mutate(rng, originals)
            t0, c0 = time.perf_counter(), time.process_time()
            outcome = check_validate(root, mutant, time_limit=args.limit, check_sql=not args.no_sql)
            took = time.perf_counter() - t0
            times.append(took)
            cpu.append(time.process_time() - c0)
            if took > slowest[0]:
                slowest = (took, " ".join(mutant.steps))
            kinds[outcome.kind] += 1
            if outcome.kind != "ok":
                failures.append((i, outcome))
            if (i + 1) % 500 == 0:
                print(f"  {i + 1} cases, {len(failures)} failures, {time.perf_counter() - t_all:.0f}s", file=sys.stderr)
        total = time.perf_counter() - t_all
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"fuzz_manifests: seed {args.seed}, {args.cases} cases, SQL checks {'off' if args.no_sql else 'on'}, "
          f"{total:.0f}s total")
    print(f"  ok (validate returned, errors located, outputs valid): {kinds['ok']}")
    for kind in ("traceback", "internal", "hang", "unlocated", "bad-output"):
        print(f"  {kind:<10} {kinds[kind]}")
    print(f"  per case, wall: min {min(times):.3f}s median {statistics.median(times):.3f}s max {max(times):.3f}s "
          f"(slowest: {slowest[1]})")
    print(f"  per case, CPU:  median {statistics.median(cpu):.3f}s max {max(cpu):.3f}s (the hang limit is {args.limit:g} CPU s)")
    print(f"  peak memory (RSS): {peak_mb:.0f} MB")
    for i, outcome in failures[: args.show]:
        print(f"\n--- case {i}: {outcome.kind}\n{outcome.detail[-3000:]}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
