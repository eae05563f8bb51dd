"""Whole-process cost of a one-entity update (`pipectl simulate update`), against its floors.

A one-player update through every phase is what a scheduler or a webhook runs every few
minutes; its process start-up (imports, manifest loading, template compilation) is paid
every time. Measured, in interleaved rounds (min and median of ``--rounds`` >= 5), each run
in a fresh process from the same saved state (a game day already run in full):

  * ``python -c pass``: the interpreter alone (the floor of any command);
  * ``pipectl --help``: the CLI's own start-up (click, no command imports);
  * ``duckdb + same SQL``: the real baseline of the update: a bare Python process that
    imports duckdb, opens the same saved warehouse and runs exactly the SQL statements (and
    parameters, and transactions) that one update sent to DuckDB, recorded once beforehand;
    what the update costs above it is pipectl itself (imports, manifest, rendering, the
    local bus and ledger, run history);
  * the update: whole-process wall and CPU time, and the part the pipeline itself reports
    (``total ...s``); whole process minus pipeline is what start-up costs. Each update runs
    once before the rounds in the folder the rounds use, and what it left in
    ``.pipectl/cache/`` is kept in the saved state (a folder where a command ran before).

    python bench/bench_startup.py [--rounds 5] [--compare /path/to/other/checkout ...]

``--compare`` (repeatable) adds the same update run by another checkout of pipectl (its
directory first on PYTHONPATH), interleaved in the same rounds: before/after figures of a
change.

Before the rounds every measured checkout's ``framework/`` and the saved project's
``pipelines/`` are byte-compiled (``compileall``), as ``pip install`` does for an installed
package and as a project's first run leaves them: without it, a shell with
``PYTHONDONTWRITEBYTECODE=1`` (or a read-only checkout) would compile every module from source
in every run, ~0.15 s of the update that no installed pipectl pays.

``--breakdown``: where the update's CPU time goes, step by step (interpreter, modules,
argument checks, backends, the edit, the driver's set-up, the pipeline and its DuckDB
statements, closing), for this checkout and every ``--compare`` one (bench/startup_breakdown.py).

``--statements``: the statements one update sends to DuckDB, per processor and purpose
(detection, write, fingerprints, change-set, counts, transactions), and the time each took;
with ``--compare DIR``, both checkouts' recorded statements replayed by one bare duckdb
connection on the same saved state, ``--rounds`` interleaved rounds, per processor.

``--cli``: the start-up of the commands a user types most, ``pipectl --help`` and
``pipectl validate`` (the example project, SQL checks included), against two floors: the
bare interpreter and ``python -c 'import click'`` (what any click CLI pays). It also prints
which heavy libraries each command imported (rich must not be among them: only commands
that draw tables or progress bars load it).

    python bench/bench_startup.py --cli [--rounds 11]
"""
from __future__ import annotations

import argparse
import os
import pickle
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

DAY = "2025-01-06"
WAREHOUSE = Path(".pipectl") / "warehouse.duckdb"

# the baseline process: import duckdb, open the saved warehouse, replay the recorded statements
REPLAY = """
import pickle, sys
import duckdb
statements = pickle.load(open(sys.argv[1], "rb"))
con = duckdb.connect(sys.argv[2])
for sql, params in statements:
    cur = con.execute(sql, params) if params else con.execute(sql)
    if cur.description is not None:
        cur.fetchall()
con.close()
"""


def _cpu_run(cmd: list[str], cwd: Path, env: dict[str, str] | None = None) -> tuple[float, float, str]:
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=cwd, env=env)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    out, err = proc.stdout.read().decode(), proc.stderr.read().decode()
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{out[-1500:]}{err[-1500:]}")
    return wall, usage.ru_utime + usage.ru_stime, out


def byte_compile(*folders: Path) -> None:
    """Write the ``__pycache__`` of ``folders`` (what an installed package has)."""
    for folder in folders:
        subprocess.run([sys.executable, "-m", "compileall", "-q", str(folder)], check=True, stdout=subprocess.DEVNULL)


def prepare(tmp: Path) -> tuple[Path, str]:
    """A copy of the example with a game day generated and run in full; the player to edit."""
    from bench_pipeline import copy_project

    root = copy_project(tmp / "saved")
    cli = [sys.executable, "-m", "framework.cli"]
    _cpu_run([*cli, "sample", "--date", DAY], root)
    _cpu_run([*cli, "run", "--date", DAY], root)
    import duckdb

    con = duckdb.connect(str(root / WAREHOUSE), read_only=True)
    try:
        player = con.execute("SELECT player_lookup FROM nba_landing.nbac_gamebook WHERE game_date = ? AND minutes > 0 "
                             "ORDER BY points DESC, player_lookup LIMIT 1", [DAY]).fetchone()[0]
    finally:
        con.close()
    return root, player


HEAVY = ("rich", "duckdb", "sqlglot", "jinja2", "networkx", "google.cloud.bigquery", "openlineage.client")


def _imported(args: list[str], cwd: Path) -> list[str]:
    """The heavy libraries a command leaves in sys.modules (run in-process, in a fresh interpreter)."""
    code = ("import sys; from framework.cli import main\n"
            "try:\n    main(sys.argv[1:])\nexcept SystemExit:\n    pass\n"
            f"print([m for m in {HEAVY!r} if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, cwd=cwd).stdout
    return eval(out.strip().splitlines()[-1])  # noqa: S307 - our own printed list


def cli_startup(rounds: int) -> int:
    """``pipectl --help`` and ``pipectl validate`` against python and python+click."""
    from bench_pipeline import copy_project

    with tempfile.TemporaryDirectory() as d:
        root = copy_project(Path(d) / "project")
        byte_compile(ROOT / "framework", root / "pipelines")
        cli = [sys.executable, "-m", "framework.cli"]
        cases = {
            "python -c pass": [sys.executable, "-c", "pass"],
            "python -c 'import click'": [sys.executable, "-c", "import click"],
            "pipectl --help": [*cli, "--help"],
            "pipectl validate": [*cli, "validate"],
            "pipectl validate --no-sql": [*cli, "validate", "--no-sql"],
        }
        walls: dict[str, list[float]] = {k: [] for k in cases}
        for _ in range(rounds):
            for name, cmd in cases.items():  # interleaved: load changes hit every case alike
                walls[name].append(_cpu_run(cmd, root)[0])
        py, ck = walls["python -c pass"], walls["python -c 'import click'"]
        print(f"{'':<27} {'min':>7} {'median':>7}   x python min/med   x click min/med  heavy imports")
        for name, ws in walls.items():
            med = statistics.median(ws)
            heavy = _imported(cases[name][3:], root) if name.startswith("pipectl") else []
            print(f"{name:<27} {min(ws):>6.3f}s {med:>6.3f}s   {min(ws) / min(py):>6.2f}x {med / statistics.median(py):>6.2f}x"
                  f"   {min(ws) / min(ck):>6.2f}x {med / statistics.median(ck):>6.2f}x  {', '.join(heavy) or '-'}")
    return 0


class _Recording:
    """A DuckDB connection that keeps every statement it is given, with its parameters
    (and, in ``tags``, the processor whose run sent it, from the log context)."""

    def __init__(self, con, log: list, tags: list | None = None):
        self._con, self._log, self._tags = con, log, tags

    def execute(self, sql, params=None):
        self._log.append((sql, params))
        if self._tags is None:
            return self._con.execute(sql, params) if params else self._con.execute(sql)
        from framework.config.logs import current_context

        t0 = time.perf_counter()
        cur = self._con.execute(sql, params) if params else self._con.execute(sql)
        if cur.description is not None:  # fetched by the caller; timed here with the statement
            rows = cur.fetchall()
            self._tags.append((current_context().get("processor", "-"), time.perf_counter() - t0))
            return _Fetched(cur.description, rows)
        self._tags.append((current_context().get("processor", "-"), time.perf_counter() - t0))
        return cur

    def __getattr__(self, name):
        return getattr(self._con, name)


class _Fetched:
    """A cursor whose rows were already fetched (so the statement's time includes them)."""

    def __init__(self, description, rows):
        self.description, self._rows = description, rows

    def fetchall(self):
        return self._rows

    def fetchone(self):
        return self._rows[0] if self._rows else None


def record_statements(saved: Path, work: Path, player: str, out: Path, tags: list | None = None) -> int:
    """Run the update once in this process on a copy of ``saved``, recording every statement
    pipectl sends to DuckDB (edit, detection, writes, fingerprints, change-sets)."""
    from framework.backends.duckdb import DuckDBWarehouse
    from framework.drive.session import Session, simulate_update

    shutil.rmtree(work, ignore_errors=True)
    shutil.copytree(saved, work)
    log: list = []
    real_open = DuckDBWarehouse._open
    DuckDBWarehouse._open = lambda self: _Recording(real_open(self), log, tags)  # type: ignore[method-assign]
    try:
        with Session.open(work) as sess:
            upd = simulate_update(sess, DAY, player, {"points": 44})
            assert upd.report.status == "success", upd.report.to_dict()
    finally:
        DuckDBWarehouse._open = real_open  # type: ignore[method-assign]
    out.write_bytes(pickle.dumps(log))
    return len(log)


# what a statement is for, from its first words (pipectl's templates start with a comment line)
KINDS = (
    ("detect", r"-- change detection"), ("write", r"-- write processed rows|^DELETE FROM nba_|^INSERT INTO nba_"),
    ("fingerprints", r"processed_fingerprints|entity_fingerprints|-- record processed"), ("change-set", r"change_sets"),
    ("count/read", r"^SELECT COUNT|^SELECT DISTINCT|^SELECT"), ("data test", r"-- data test"),
    ("catalog", r"information_schema"), ("transaction", r"^(BEGIN|COMMIT|ROLLBACK)"), ("session", r"^SET "),
    ("schema", r"^CREATE"),
)


def classify(sql: str) -> str:
    text = sql.strip()
    for kind, pattern in KINDS:
        if re.search(pattern, text[:400], re.M):
            return kind
    return "other"


def statements(saved: Path, work: Path, player: str, out: Path) -> None:
    """Per processor, how many statements the update sent and what each was for."""
    tags: list = []
    n = record_statements(saved, work, player, out, tags)
    log = pickle.loads(out.read_bytes())
    per: dict[str, list[tuple[str, float]]] = {}
    for (sql, _), (who, took) in zip(log, tags):
        per.setdefault(who, []).append((classify(sql), took))
    total = sum(t for _, t in tags)
    print(f"one-player update ({player}): {n} DuckDB statements (connection.execute calls), {total * 1000:.0f} ms in DuckDB")
    print(f"  {'processor (- = driver)':<34} {'n':>3} {'ms':>6}  statements by purpose (count, ms)")
    for who, items in per.items():
        counts: dict[str, list[float]] = {}
        for k, t in items:
            counts.setdefault(k, []).append(t)
        print(f"  {who:<34} {len(items):>3} {1000 * sum(t for _, t in items):>6.1f}  "
              + ", ".join(f"{k} {len(v)} ({1000 * sum(v):.1f})" for k, v in counts.items()))
    if os.environ.get("PIPECTL_BENCH_SQL"):
        for (sql, _), (who, took) in zip(log, tags):
            print(f"--- {who}: {classify(sql)} {took * 1000:.1f} ms\n{sql.strip()[:300]}")


def warm_caches(saved: Path, work: Path, updates: dict[str, tuple[list[str], dict[str, str] | None]],
                keep: Path) -> dict[str, Path]:
    """Run each update once where the rounds run them (``work``) and keep what it left in
    ``.pipectl/cache/`` (compiled templates, the loaded project, rendered statements), one
    folder per update under ``keep``: the rounds measure a folder whose previous command
    already ran there, the steady state of a scheduler or a webhook. Caches are keyed by
    the project's folder and by pipectl's code, so each checkout gets its own (two
    checkouts sharing one would make each other miss); the first command after an edit
    pays a miss (docs/performance.md)."""
    caches: dict[str, Path] = {}
    for i, (name, (cmd, env)) in enumerate(updates.items()):
        fresh_work(saved, work)
        _cpu_run(cmd, work, env)
        caches[name] = keep / f"cache-{i}"
        shutil.copytree(work / ".pipectl" / "cache", caches[name])
    return caches


def fresh_work(saved: Path, work: Path, cache: Path | None = None) -> None:
    """``work`` as ``saved`` is, with ``cache`` as its ``.pipectl/cache/`` when given."""
    shutil.rmtree(work, ignore_errors=True)
    shutil.copytree(saved, work)
    if cache is not None:
        shutil.rmtree(work / ".pipectl" / "cache", ignore_errors=True)
        shutil.copytree(cache, work / ".pipectl" / "cache")


# another checkout records its own update's statements in a child process (its framework first
# on sys.path; this file's recorder imported from its folder)
RECORD_OTHER = """
import pickle, sys
from pathlib import Path
sys.path.insert(1, sys.argv[1])
from bench_startup import record_statements
tags = []
record_statements(Path(sys.argv[2]), Path(sys.argv[3]), sys.argv[4], Path(sys.argv[5]), tags)
log = pickle.loads(Path(sys.argv[5]).read_bytes())
Path(sys.argv[5]).write_bytes(pickle.dumps([(sql, params, who) for (sql, params), (who, _) in zip(log, tags)]))
"""


def _replay(saved: Path, work: Path, log: list) -> dict[str, float]:
    """Run recorded (sql, params, processor) statements on a fresh copy of ``saved``: seconds per processor."""
    import duckdb

    shutil.rmtree(work, ignore_errors=True)
    shutil.copytree(saved, work)
    con = duckdb.connect(str(work / WAREHOUSE))
    out: dict[str, float] = {}
    try:
        for sql, params, who in log:
            t0 = time.perf_counter()
            cur = con.execute(sql, params) if params else con.execute(sql)
            if cur.description is not None:
                cur.fetchall()
            out[who] = out.get(who, 0.0) + time.perf_counter() - t0
    finally:
        con.close()
    return out


def compare_statements(saved: Path, tmp: Path, player: str, others: list[Path], rounds: int) -> None:
    """This checkout's and ``others``' update statements, replayed by a bare duckdb connection
    on the same saved state in interleaved rounds: per processor, how many and what they cost
    (min and median), without the rest of either process. The state is prepared by this
    checkout: compare checkouts of one state format (another format upgrades or recomputes)."""
    logs = {}
    for name, root in [("this", None)] + [(o.name, o) for o in others]:
        out = tmp / f"statements-{name}.pickle"
        if root is None:
            tags: list = []
            record_statements(saved, tmp / "rec", player, out, tags)
            logs[name] = [(sql, params, who) for (sql, params), (who, _) in zip(pickle.loads(out.read_bytes()), tags)]
        else:
            env = {**os.environ, "PYTHONPATH": str(root.resolve())}
            subprocess.run([sys.executable, "-c", RECORD_OTHER, str(HERE), str(saved), str(tmp / "rec"), player, str(out)],
                           check=True, env=env, cwd=tmp)
            logs[name] = pickle.loads(out.read_bytes())
    times: dict[str, list[dict[str, float]]] = {k: [] for k in logs}
    for _ in range(rounds):
        for name, log in logs.items():
            times[name].append(_replay(saved, tmp / "replay", log))
    procs = list(dict.fromkeys(w for log in logs.values() for _, _, w in log))
    names = list(logs)
    print(f"statements of the update replayed by one duckdb connection, {rounds} interleaved rounds "
          f"(ms: min / median; n = statements)")
    print(f"  {'processor (- = driver)':<32} " + " ".join(f"{n[:24]:>26}" for n in names))
    for who in procs + ["total"]:
        cells = []
        for name in names:
            n = sum(1 for _, _, w in logs[name] if w == who or who == "total")
            per = [sum(r.values()) if who == "total" else r.get(who, 0.0) for r in times[name]]
            cells.append(f"n={n:>3} {1000 * min(per):>6.1f} / {1000 * statistics.median(per):>6.1f}" if n else f"{'-':>26}")
        print(f"  {who:<32} " + " ".join(f"{c:>26}" for c in cells))


def main() -> int:
    from benchlib import machine

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--cli", action="store_true", help="start-up of pipectl --help and validate instead")
    ap.add_argument("--statements", action="store_true",
                    help="list the statements one update sends, per processor and purpose (with --compare: every "
                         "checkout's statements replayed by a bare duckdb connection, interleaved), and exit")
    ap.add_argument("--breakdown", action="store_true",
                    help="CPU per step of the update (and of each --compare checkout) instead of the whole-process rounds")
    ap.add_argument("--compare", type=Path, action="append", default=[],
                    help="another pipectl checkout to run the same update with (repeatable)")
    args = ap.parse_args()
    if args.cli:
        print(f"machine: {machine()}; {args.rounds} interleaved rounds, each command a fresh process")
        return cli_startup(args.rounds)
    print(f"machine: {machine()}; {args.rounds} interleaved rounds, each run a fresh process on the same saved state")
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        saved, player = prepare(tmp)
        work = tmp / "run"
        recorded = tmp / "statements.pickle"
        replay = tmp / "replay.py"
        replay.write_text(REPLAY)
        if args.statements:
            statements(saved, work, player, recorded)
            if args.compare:
                compare_statements(saved, tmp, player, args.compare, args.rounds)
            return 0
        n = record_statements(saved, work, player, recorded)
        byte_compile(ROOT / "framework", saved / "pipelines", *(other.resolve() / "framework" for other in args.compare))
        print(f"one-player update ({player}, points=44): {n} DuckDB statements recorded for the baseline")
        cli = [sys.executable, "-m", "framework.cli"]
        cases = {
            "python -c pass": [sys.executable, "-c", "pass"],
            "pipectl --help": [*cli, "--help"],
            "duckdb + same SQL": [sys.executable, str(replay), str(recorded), str(WAREHOUSE)],
            "one-player update": [*cli, "simulate", "update", "--date", DAY, "--entity", f"player={player}", "--set", "points=44"],
        }
        envs: dict[str, dict[str, str] | None] = {k: None for k in cases}
        for checkout in args.compare:
            other = f"one-player update ({checkout.name})"
            cases[other] = cases["one-player update"]
            envs[other] = {**os.environ, "PYTHONPATH": str(checkout.resolve())}
        caches = warm_caches(saved, work, {k: (cmd, envs[k]) for k, cmd in cases.items()
                                           if k.startswith("one-player update")}, tmp)
        if args.breakdown:
            from startup_breakdown import breakdown

            breakdown(saved, work, cases["one-player update"][3:],
                      {k: envs[k] for k in cases if k.startswith("one-player update")}, args.rounds,
                      lambda name: fresh_work(saved, work, caches.get(name)))
            return 0
        results: dict[str, list[tuple[float, float, float]]] = {k: [] for k in cases}
        for _ in range(args.rounds):
            for name, cmd in cases.items():
                fresh_work(saved, work, caches.get(name))  # every run starts from the same state
                wall, cpu, out = _cpu_run(cmd, work, envs[name])
                found = re.search(r"total ([0-9.]+)s", out)
                results[name].append((wall, cpu, float(found.group(1)) if found else 0.0))
        base = statistics.median(w for w, _, _ in results["duckdb + same SQL"])
        print(f"{'':<34} {'wall min':>9} {'wall med':>9} {'CPU min':>8} {'CPU med':>8} {'pipeline med':>13} "
              f"{'start-up med':>13} {'x duckdb+SQL':>13}")
        for name, runs in results.items():
            walls = [w for w, _, _ in runs]
            pipe = [p for _, _, p in runs]
            cpus = [c for _, c, _ in runs]
            print(f"{name:<34} {min(walls):>8.2f}s {statistics.median(walls):>8.2f}s {min(cpus):>7.2f}s {statistics.median(cpus):>7.2f}s "
                  f"{statistics.median(pipe):>12.2f}s {statistics.median(w - p for w, _, p in runs):>12.2f}s "
                  f"{statistics.median(walls) / base:>12.2f}x")
        upd = statistics.median(w for w, _, _ in results["one-player update"])
        print(f"the update costs {upd - base:.2f}s (median) above the same SQL run by a bare duckdb process; target: whole process < 0.4 s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
