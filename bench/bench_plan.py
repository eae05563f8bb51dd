"""Cost of `pipectl plan` / `apply` on the embedded backends as a project grows.

Usage: python bench/bench_plan.py [--sizes 20,100,300]

For each size a synthetic project (bench/gen_manifest.py) is planned on an empty backend,
applied, and planned again (no changes: the steady-state cost CI pays on every run).
Baseline measured in the same run: loading and validating the manifests alone (`load()`),
which every plan must do anyway, so "re-plan / load" reads as "reading the actual state and
diffing costs x times the manifest load". Figures are wall-clock seconds, best of 3 for
the plans; apply runs once per size.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from gen_manifest import generate  # noqa: E402

from framework.project import load  # noqa: E402
from framework.plan.planner import PlanOptions, plan_and_apply, plan_project  # noqa: E402


def best(fn, repeat: int = 3) -> tuple[float, object]:
    out, times = None, []
    for _ in range(repeat):
        start = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - start)
    return min(times), out


def run(size: int, folder: Path) -> dict:
    root = generate(folder / f"p{size}", size)
    t_load, _ = best(lambda: load(root))
    t_plan_empty, plan = best(lambda: plan_project(root))
    start = time.perf_counter()
    _, result = plan_and_apply(root, options=PlanOptions())
    t_apply = time.perf_counter() - start
    assert result is not None and result.converged, "apply did not converge"
    t_replan, again = best(lambda: plan_project(root))
    assert not again.has_changes, "re-plan after apply shows changes"
    return {"size": size, "resources": len(plan.changes), "load": t_load, "plan_empty": t_plan_empty,
            "apply": t_apply, "replan": t_replan}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="20,100,300")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    print(f"{'processors':>10} {'resources':>9} {'load s':>8} {'plan(empty) s':>13} {'apply s':>8} {'re-plan s':>9} {'re-plan/load':>12} {'ms/resource':>11}")
    with tempfile.TemporaryDirectory() as tmp:
        for size in sizes:
            r = run(size, Path(tmp))
            print(f"{r['size']:>10} {r['resources']:>9} {r['load']:>8.3f} {r['plan_empty']:>13.3f} {r['apply']:>8.3f} "
                  f"{r['replan']:>9.3f} {r['replan'] / r['load']:>11.1f}x {1000 * r['replan'] / r['resources']:>11.2f}")


if __name__ == "__main__":
    main()
