"""Benchmark `pipectl validate` on generated manifests (bench/gen_manifest.py) against floors.

What is measured: the wall time and peak RSS of whole processes (interpreter start
included), each in a fresh subprocess, rounds interleaved so machine load hits every
mode alike; min and median of ``--rounds`` (>= 5) rounds.

Baselines (run in the same rounds, same project):

* ``floor-shape``: read both YAML files once, parse them with the fastest YAML parser
  installed (``yaml-rs``, Rust: no locations, faster than pipectl's own reader) and check
  them against pipectl's JSON Schemas with the Rust validator. A validator cannot do less;
  ``validate --no-sql`` over it is what reading with locations, resolving and the graph
  rules cost.
* ``floor-sql``: ``floor-shape`` plus reading every transform file once, substituting its
  Jinja calls by table names and parsing it once with sqlglot (one dialect, no checks).
  ``validate`` over it is what rendering in two dialects, the template statements, the
  lineage facts and the checks cost: *cold* (no cache), *warm* (nothing changed since the
  previous run: the recorded diagnostics are replayed, nothing is loaded), *1 edit* (one
  transform changed since the previous run: the manifests are loaded, only that
  processor's SQL is checked again, the rest of the recorded result kept) and *yaml edit*
  (processors.yaml changed: every processor checked again, the statements' parses cached).

*floor-sql N cores* spreads floor-sql's parses over a pool of N forked workers (N = the
machine's cores): the least a SQL check can take on this machine, however parallel.
``--pure-sqlglot`` adds *floor-sql pure-sqlglot* and *validate cold pure-sqlglot*: the same
with sqlglot's pure-Python modules (a copy of the package without the compiled modules
``sqlglotc`` lays over it), i.e. what an install without the ``c`` extra costs; its ratio is
over *validate cold*. ``--modes`` runs a subset (comma-separated names).

CPU seconds are the process's and its pool workers' (user + system); peak RSS is the
largest process of the tree.

    python bench/bench_validate.py [--sizes 1000,10000] [--rounds 5] [--distinct 1.0] [--pure-sqlglot] [--modes a,b]
"""
from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

FLOOR = r"""
import json, re, sys
from pathlib import Path
import yaml_rs, jsonschema_rs
import framework
root, sql = Path(sys.argv[1]), sys.argv[2] == "sql"
schemas = Path(framework.__file__).resolve().parent / "schemas"
docs = {}
for name in ("processors", "topics"):
    data = yaml_rs.loads((root / f"{name}.yaml").read_text(), parse_datetime=False)
    assert jsonschema_rs.validator_for(json.loads((schemas / f"{name}.schema.json").read_text())).is_valid(data), name
    docs[name] = data
def parse(text):
    sqlglot.parse_one(text, read="bigquery")
    return None
if sql:
    import sqlglot
    texts = []
    tables = {p["name"]: f"ds.{p['name']}" for p in docs["processors"]["processors"]}
    tables.update({s["name"]: s["table"] for s in docs["processors"].get("sources", [])})
    call = re.compile(r"\{\{\s*(ref|source)\('([^']+)'\)\s*\}\}")
    for p in docs["processors"]["processors"]:
        text = (root / p["transform"]["sql"]).read_text()
        text = call.sub(lambda m: tables[m.group(2)], text)
        text = re.sub(r"\{\{\s*partition\s*\}\}", "@day", text)
        text = re.sub(r"\{\{\s*entity_filter\([^)]*\)\s*\}\}", "TRUE", text)
        texts.append(text)
    if sys.argv[3] == "1":
        for text in texts:
            sqlglot.parse_one(text, read="bigquery")
    else:  # the parses spread over a pool of forked workers: the floor on this many cores
        import multiprocessing as mp
        with mp.get_context("fork").Pool(int(sys.argv[3])) as pool:
            for _ in pool.imap_unordered(parse, texts, chunksize=64):
                pass
"""


def run(cmd: list[str], env: dict | None = None) -> tuple[float, float, float]:
    """(wall seconds, peak RSS MiB, CPU seconds) of one whole child process and its children."""
    t0 = time.perf_counter()
    # cwd: not the checkout (``python -m`` puts the cwd first on sys.path; PYTHONPATH decides)
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, cwd=tempfile.gettempdir())
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    out, err = proc.communicate()
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({proc.returncode}):\n{out.decode()[-2000:]}{err.decode()[-2000:]}")
    return wall, usage.ru_maxrss / 1024, usage.ru_utime + usage.ru_stime


def modes(root: Path, pure: Path | None = None) -> dict[str, tuple[list[str], str | None, dict | None]]:
    """name -> (command, baseline name, environment or None). ``pure``: a copy of sqlglot
    without its compiled modules (:func:`pure_sqlglot`), for the *pure sqlglot* modes."""
    cli = [sys.executable, "-m", "framework.cli", "-p", str(root), "validate"]
    floor = [sys.executable, "-c", FLOOR, str(root)]
    cores = str(os.cpu_count() or 1)
    plan: dict[str, tuple[list[str], str | None, dict | None]] = {
        "floor-shape": ([*floor, "shape", "1"], None, None),
        "validate --no-sql": ([*cli, "--no-sql"], "floor-shape", None),
        "floor-sql": ([*floor, "sql", "1"], None, None),
        f"floor-sql {cores} cores": ([*floor, "sql", cores], None, None),
        "validate cold": (cli, "floor-sql", None),
        "validate warm": (cli, "floor-sql", None),
        "validate 1 edit": (cli, "floor-sql", None),
        "validate yaml edit": (cli, "floor-sql", None),
    }
    if pure is not None:
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(pure), os.environ.get("PYTHONPATH")]))}
        plan["floor-sql pure-sqlglot"] = ([*floor, "sql", "1"], None, env)
        plan["validate cold pure-sqlglot"] = (cli, "validate cold", env)
    return plan


def pure_sqlglot(into: Path) -> Path:
    """A copy of the installed sqlglot package without the compiled modules ``sqlglotc``
    lays over it (the ``.so``/``.pyd`` files beside the ``.py`` ones): first on PYTHONPATH,
    it is sqlglot as installed without the ``c`` extra."""
    import sqlglot

    src = Path(sqlglot.__file__).resolve().parent
    shutil.copytree(src, into / "sqlglot", ignore=shutil.ignore_patterns("*.so", "*.pyd", "__pycache__"))
    return into


def _edit_one(root: Path, round_: int) -> None:
    """Change one constant of one transform (a different one each round)."""
    files = sorted((root / "sql").glob("*.sql"))
    path = files[(round_ * 7919) % len(files)]
    text = path.read_text()
    path.write_text(text.replace(" AS m0,", f" + {round_ + 1} AS m0,", 1) if " AS m0," in text else text + " ")


def bench_size(root: Path, rounds: int, pure: Path | None = None, only: list[str] | None = None) -> dict[str, list[tuple[float, float, float]]]:
    cache = root / ".pipectl"
    plan = {k: v for k, v in modes(root, pure).items() if not only or k in only}
    results: dict[str, list[tuple[float, float, float]]] = {m: [] for m in plan}
    for r in range(rounds):
        for name, (cmd, _, env) in plan.items():
            if name.startswith("validate cold"):
                shutil.rmtree(cache, ignore_errors=True)
            if name == "validate 1 edit":
                _edit_one(root, r)
            if name == "validate yaml edit":  # processors.yaml changed: every transform checked, parses cached
                with (root / "processors.yaml").open("a") as f:
                    f.write(f"# edit {r}\n")
            results[name].append(run(cmd, env))
    return results


def report(n: int, distinct: float, results: dict[str, list[tuple[float, float, float]]]) -> None:
    plan = {k: v[1] for k, v in modes(Path("."), Path(".")).items()}
    print(f"\n{n} processors ({distinct:.0%} distinct transforms), {len(next(iter(results.values())))} interleaved rounds")
    print(f"{'mode':<28} {'min s':>8} {'median s':>9} {'CPU s (med)':>11} {'peak MiB':>9} {'x baseline (median)':>24} {'x baseline (min)':>14}")
    for name, runs in results.items():
        walls = [w for w, _, _ in runs]
        cpu = statistics.median(c for _, _, c in runs)
        peak = max(m for _, m, _ in runs)
        base = plan[name]
        if base is None or base not in results:
            ratio = "1.00 (floor)"
            ratio_min = ""
        else:
            bw = [w for w, _, _ in results[base]]
            ratio = f"{statistics.median(walls) / statistics.median(bw):.2f} {base}"
            ratio_min = f"{min(walls) / min(bw):.2f}"
        print(f"{name:<28} {min(walls):>8.3f} {statistics.median(walls):>9.3f} {cpu:>11.2f} {peak:>9.1f} {ratio:>24} {ratio_min:>14}")


def main() -> None:
    from benchlib import machine
    from gen_manifest import generate

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="1000,10000")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--distinct", type=float, default=1.0, help="fraction of distinct transforms (gen_manifest)")
    ap.add_argument("--pure-sqlglot", action="store_true",
                    help="also run cold validate and floor-sql with sqlglot's pure-Python modules (without sqlglotc)")
    ap.add_argument("--modes", default="", help="comma-separated subset of the modes to run (default: all)")
    args = ap.parse_args()
    if args.rounds < 5:
        print("note: fewer than 5 rounds; medians are not robust", file=sys.stderr)
    print(f"machine: {machine()}; whole-process wall time and peak RSS per run")
    for n in [int(x) for x in args.sizes.split(",")]:
        with tempfile.TemporaryDirectory() as tmp:
            root = generate(Path(tmp) / "proj", n, distinct=args.distinct)
            pure = pure_sqlglot(Path(tmp) / "pure") if args.pure_sqlglot else None
            only = [m.strip() for m in args.modes.split(",") if m.strip()] or None
            report(n, args.distinct, bench_size(root, args.rounds, pure, only))
            print(f"load average at end: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
