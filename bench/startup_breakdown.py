"""Where the CPU time of a one-entity update goes, step by step (``bench_startup.py --breakdown``).

Each round runs the update in a fresh process whose entry point marks the process's CPU
time (all threads, DuckDB's included) at the boundaries of the command's steps: the
interpreter, the CLI module, the run path's modules, argument checking (the project is
loaded there), opening the backends, the edit (importing duckdb and connecting happen
there), the full-batch comparison, the driver's set-up, the pipeline (and, inside it, the
time spent in DuckDB statements), closing the backends, and what the process spends after ``main`` returned
(atexit handlers and Python's shutdown: the process's CPU time minus that at the end of
``main``). The marks wrap public functions of
the checkout under test, so the same table can be made for another checkout (``--compare``)
in the same rounds. Medians and minima of CPU milliseconds.
"""
from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Callable

TIMELINE = r'''
import json, sys, time
T = [("interpreter + site", time.process_time())]
def mark(name): T.append((name, time.process_time()))
import framework.cli
mark("import click + framework.cli")
import framework.drive.session as s, framework.drive.pipeline as p, framework.backends.duckdb as d
mark("run-path modules (driver, runner, orchestrator, backends)")
SQL = [0.0]
run_sql = d.DuckDBWarehouse._run
def timed_sql(*a, **k):
    c = time.process_time()
    try:
        return run_sql(*a, **k)
    finally:
        SQL[0] += time.process_time() - c
d.DuckDBWarehouse._run = timed_sql
def wrap(owner, attr, before, after):
    f = getattr(owner, attr)
    def w(*a, **k):
        mark(before)
        try:
            return f(*a, **k)
        finally:
            mark(after)
    setattr(owner, attr, w)
opened = s.Session.open.__func__
s.Session.open = classmethod(lambda cls, *a, **k: (mark("arguments checked (manifests loaded), logging"),
                                                    opened(cls, *a, **k), mark("open the backends"))[1])
wrap(s, "apply_edits", "-", "the edit (duckdb imported and connected, sample hook)")
wrap(p.PipelineDriver, "__init__", "full-batch comparison (run history)", "driver set-up (topology, tables, stale runs)")
pipeline = p.PipelineDriver.run
def run(*a, **k):
    mark("-"); SQL[0] = 0.0
    try:
        return pipeline(*a, **k)
    finally:
        mark("pipeline"); T.append(("  of which DuckDB statements", SQL[0]))
p.PipelineDriver.run = run
wrap(s.Session, "close", "-", "close (checkpoints)")
framework.cli.main(sys.argv[2:])
out, prev = [], 0.0
for name, c in T:
    if name.startswith("  "):
        out.append((name, c))
    else:
        out.append((name, c - prev)); prev = c
out.append(("@end", time.process_time()))  # the parent subtracts it from the process's CPU: exit
with open(sys.argv[1], "a") as f:
    f.write(json.dumps(out) + "\n")
'''


def breakdown(saved: Path, work: Path, args: list[str], checkouts: dict[str, dict[str, str] | None], rounds: int,
              fresh: Callable[[str], None]) -> None:
    """Print the per-step CPU table of the update (``args``) for each checkout."""
    with tempfile.TemporaryDirectory() as d:
        script = Path(d) / "timeline.py"
        script.write_text(TIMELINE)
        logs = {name: Path(d) / f"{i}.jsonl" for i, name in enumerate(checkouts)}
        exits: dict[str, list[float]] = {name: [] for name in checkouts}
        for _ in range(rounds):
            for name, env in checkouts.items():  # interleaved, like the whole-process rounds
                fresh(name)  # the saved state, with this checkout's own caches
                proc = subprocess.Popen([sys.executable, str(script), str(logs[name]), *args], cwd=work, env=env,
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                _, status, usage = os.wait4(proc.pid, 0)
                if os.waitstatus_to_exitcode(status) != 0:
                    raise SystemExit(f"the update failed in {name}")
                end = dict(json.loads(logs[name].read_text().splitlines()[-1]))["@end"]
                exits[name].append(usage.ru_utime + usage.ru_stime - end)
        tables = {name: _steps(path) for name, path in logs.items()}
        for name, table in tables.items():  # after main returned: atexit handlers, Python's shutdown
            table["interpreter exit (after main)"] = exits[name]
            table["total (whole process)"] = [t + e for t, e in zip(table["total (to the end of main)"], exits[name])]
    steps = list(next(iter(tables.values())))
    print(f"CPU ms per step (median / min of {rounds} rounds; all threads):")
    print(f"  {'step':<58}" + "".join(f" {name[:22]:>23}" for name in tables))
    for step in steps:
        cells = []
        for table in tables.values():
            v = table.get(step, [])
            cells.append(f"{statistics.median(v) * 1000:>10.1f} / {min(v) * 1000:>6.1f}  " if v else f"{'-':>23}")
        print(f"  {step:<58}" + " ".join(cells))


def _steps(path: Path) -> dict[str, list[float]]:
    out: dict[str, list[float]] = {}
    for line in path.read_text().splitlines():
        rows = json.loads(line)
        total = other = 0.0
        for name, cpu in rows:
            if name == "@end":
                continue
            if name == "-":  # between two steps (command dispatch, reports)
                other += cpu
            else:
                out.setdefault(name, []).append(cpu)
            total += 0.0 if name.startswith("  ") else cpu
        out.setdefault("other (between the steps)", []).append(other)
        out.setdefault("total (to the end of main)", []).append(total)
    return out
