"""What keeps `pipectl validate` fast at 10,000 processors, as behaviour: cache keys that
are the same every run, each transform file read once, a dialect-free transform parsed
once (DuckDB derived from its BigQuery tree), and a process pool that gives the same
results as parsing in-process."""
from __future__ import annotations

import marshal
import os
import subprocess
import sys
import zlib
from pathlib import Path

from framework.manifest import load_project
from framework.manifest.diagnostics import Diagnostics
from framework.sql import checker, checks, parsing, render

REPO = Path(__file__).resolve().parents[3]


def _run_checks(root: Path, monkeypatch, calls: list | None = None) -> list[str]:
    project, _ = load_project(root)
    diags = Diagnostics()
    if calls is not None:
        original = checker.Checker._parse_uncached

        def counting(self, sql, dialect, *args):
            calls.append((dialect, sql))
            return original(self, sql, dialect, *args)

        monkeypatch.setattr(checker.Checker, "_parse_uncached", counting)
    checks.check_rendered_sql(project, diags)
    return [str(d) for d in diags.items]


def _edit(project_dir: Path, name: str, old: str, new: str) -> None:
    path = project_dir / "pipelines" / "golden" / f"{name}.sql"
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new))


def test_cache_keys_do_not_depend_on_hash_randomisation(tmp_path):
    """Placeholders are numbered by first use, not set order: a run under another
    PYTHONHASHSEED finds every statement in the cache (before, joins of equally long table
    names got new keys every run and the cache grew: 2,054 -> 3,176 -> 4,056 entries)."""
    sys.path.insert(0, str(REPO / "bench"))
    try:
        from gen_manifest import generate  # every transform joins 2-6 equally long table names
    finally:
        sys.path.remove(str(REPO / "bench"))
    root = generate(tmp_path / "proj", 15)
    env = {k: v for k, v in os.environ.items() if k != "PIPECTL_NO_CACHE"}
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    seen = []
    for seed in ("1", "2", "3"):
        proc = subprocess.run([sys.executable, "-m", "framework.cli", "-p", str(root), "validate"],
                              env={**env, "PYTHONHASHSEED": seed}, capture_output=True, text=True)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        [cache] = (root / ".pipectl" / "cache").glob("sqlcheck-*.bin")
        seen.append((sorted(marshal.loads(zlib.decompress(cache.read_bytes()))), cache.stat().st_mtime_ns))
    assert seen[0] == seen[1] == seen[2]  # the same keys, and the file not even rewritten


def test_each_transform_file_is_read_once(project_dir, monkeypatch):
    monkeypatch.setenv("PIPECTL_NO_CACHE", "1")
    reads: list[str] = []
    original = render.read_transform

    def counting(project, proc):
        reads.append(proc.name)
        return original(project, proc)

    monkeypatch.setattr(render, "read_transform", counting)
    assert _run_checks(project_dir, monkeypatch) == []
    assert sorted(reads) == sorted(set(reads)) and len(reads) == 4


def test_dialect_free_transform_is_parsed_once_and_duckdb_derived(project_dir, monkeypatch):
    monkeypatch.setenv("PIPECTL_NO_CACHE", "1")
    calls: list = []
    assert _run_checks(project_dir, monkeypatch, calls) == []
    transforms = [d for d, sql in calls if "__ref0.__t" in sql]
    assert transforms and set(transforms) == {"bigquery"}


def test_transform_using_dialect_is_rendered_and_parsed_in_both(project_dir, monkeypatch):
    monkeypatch.setenv("PIPECTL_NO_CACHE", "1")
    _edit(project_dir, "team_summary", "SUM(b.points) AS team_points",
          "{% if dialect == 'duckdb' %}SUM(b.points){% else %}SUM(b.points){% endif %} AS team_points")
    calls: list = []
    assert _run_checks(project_dir, monkeypatch, calls) == []
    dialects = [d for d, sql in calls if "team_points" in sql]
    assert sorted(dialects) == ["bigquery", "duckdb"]


def test_construct_duckdb_cannot_express_is_reported_for_duckdb(project_dir, monkeypatch):
    monkeypatch.setenv("PIPECTL_NO_CACHE", "1")
    _edit(project_dir, "team_summary", "SUM(b.points) AS team_points",
          "SUM(b.points) + ARRAY_LENGTH(ARRAY_AGG(b.points IGNORE NULLS LIMIT 2)) AS team_points")
    got = _run_checks(project_dir, monkeypatch)
    assert len(got) == 1, got
    assert "transform pipelines/golden/team_summary.sql is not valid duckdb SQL (derived from its bigquery parse)" in got[0]
    assert "LIMIT inside ARRAY_AGG" in got[0]


def test_pool_and_in_process_parsing_agree(monkeypatch):
    schema = {"0": {"k": "STRING", "x": "INT64", "d": "DATE"}, "1": {"k": "STRING", "y": "FLOAT64"}}
    jobs = [(f"SELECT a.x * {i} AS m, b.y FROM __ref0.__t a JOIN __ref1.__t b ON b.k = a.k WHERE a.d = @day", "bigquery", True, schema, "duckdb")
            for i in range(30)]
    jobs += [("SELECT FROM WHERE (", "bigquery", True, None, "duckdb"),
             ("SELECT ARRAY_AGG(x IGNORE NULLS LIMIT 2) AS a FROM __ref0.__t", "bigquery", True, None, "duckdb")]
    serial = parsing.parse_many(jobs, workers=1)
    monkeypatch.setattr(parsing, "POOL_MIN_JOBS", 2)
    pooled = parsing.parse_many(jobs, workers=2)
    assert pooled == serial
    error, named, reads, facts, derived = serial[0]
    assert (error, named, reads, derived) == (None, ("m", "y"), ((0, "d"), (0, "k"), (0, "x"), (1, "k"), (1, "y")), None)
    assert facts and "error" not in facts  # lineage from the same single parse
    assert serial[-2][0] and serial[-1][0] is None and "ARRAY_AGG" in serial[-1][4]


def test_many_transforms_use_the_pool_with_the_same_diagnostics(project_dir, monkeypatch):
    monkeypatch.setenv("PIPECTL_NO_CACHE", "1")
    _edit(project_dir, "rosters", "FROM", "FROM (")
    serial = _run_checks(project_dir, monkeypatch)
    used: list[int] = []
    original = parsing.iter_parse

    def spy(jobs, workers=None):
        used.append(len(jobs))
        return original(jobs, workers=2)

    monkeypatch.setattr(checker, "POOL_MIN_JOBS", 1)
    monkeypatch.setattr(parsing, "POOL_MIN_JOBS", 1)
    monkeypatch.setattr(checker, "iter_parse", spy)
    assert _run_checks(project_dir, monkeypatch) == serial and used == [4]
    assert any("rosters" in d and "is not valid bigquery SQL" in d for d in serial)


def test_parse_cache_round_trips_in_batches(tmp_path, monkeypatch):
    """The cache file is written batch by batch; a file of one batch (the format before)
    still reads."""
    monkeypatch.setattr(checks.ParseCache, "BATCH", 3)
    path = tmp_path / "sqlcheck.bin"
    cache = checks.ParseCache(path)
    results = {cache.key("bigquery", f"SELECT {i} AS x", False): (None, ("x",), ((0, "x"),), {"n": i}, None) for i in range(10)}
    for key, result in results.items():
        cache.put(key, result)
    cache.save()
    again = checks.ParseCache(path)
    assert {key: again.get(key) for key in results} == results
    path.write_bytes(zlib.compress(marshal.dumps(dict(cache.entries))))
    assert {key: checks.ParseCache(path).get(key) for key in results} == results
    path.write_bytes(zlib.compress(marshal.dumps([1, 2])))
    assert checks.ParseCache(path).entries == {}  # not a cache: ignored, parsed again
