"""Benchmark `pipectl validate` on generated manifests of 1,000 and 10,000 processors.

Each measurement runs in a fresh subprocess (so peak RSS is that run's own) and prints wall
time and peak memory, for the library call and for the real CLI process, with and without
the SQL parse checks. Baseline in the same run: loading the YAML alone with PyYAML (CSafeLoader), so the
ratio shows what resolving and the rules cost on top of parsing.

    python bench/bench_validate.py [--sizes 1000,10000] [--sql]
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

CHILD = r"""
import json, resource, sys, time
t0 = time.perf_counter()
mode, root = sys.argv[1], sys.argv[2]
if mode == "yaml":
    import yaml
    for f in ("processors.yaml", "topics.yaml"):
        yaml.load(open(f"{root}/{f}"), Loader=yaml.CSafeLoader)
    n = 0
else:
    from framework.validation import validate
    d = validate(root, check_sql=(mode == "sql"))
    n = len(d.errors)
    assert n == 0, [str(x) for x in d.errors[:5]]
dt = time.perf_counter() - t0
print(json.dumps({"seconds": dt, "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "errors": n}))
"""


def child(mode: str, root: Path) -> dict:
    out = subprocess.run([sys.executable, "-c", CHILD, mode, str(root)], capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


def cli(root: Path, extra: list[str]) -> float:
    t0 = time.perf_counter()
    proc = subprocess.run(["pipectl", "-p", str(root), "validate", *extra], capture_output=True, text=True)
    dt = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"validate failed: {proc.stdout[-2000:]}{proc.stderr[-2000:]}")
    return dt


def main() -> None:
    from gen_manifest import generate

    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="1000,10000")
    ap.add_argument("--sql", action="store_true", help="also measure with SQL render+parse checks")
    args = ap.parse_args()
    print(f"{'processors':>10} {'mode':>8} {'lib s':>8} {'peak MB':>8} {'cli s':>8} {'x PyYAML':>11}")
    for n in [int(x) for x in args.sizes.split(",")]:
        with tempfile.TemporaryDirectory() as tmp:
            root = generate(Path(tmp) / "proj", n)
            base = child("yaml", root)
            modes = ["no-sql"] + (["sql"] if args.sql else [])
            for mode in modes:
                r = child(mode, root)
                c = cli(root, ["--no-sql"] if mode == "no-sql" else [])
                print(f"{n:>10} {mode:>8} {r['seconds']:>8.3f} {r['peak_rss_mb']:>8.1f} {c:>8.3f} {r['seconds'] / base['seconds']:>11.2f}")
            print(f"{n:>10} {'yaml':>8} {base['seconds']:>8.3f} {base['peak_rss_mb']:>8.1f} {'-':>8} {1.0:>11.2f}")


if __name__ == "__main__":
    main()
