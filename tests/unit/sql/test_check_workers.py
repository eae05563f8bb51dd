"""Transforms checked on forked workers (framework.sql.check_workers) write exactly what a
serial check writes: the same diagnostics in the same order, the same spans (what an
incremental validate later patches) and the same parse-cache entries."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

from framework import validation
from framework.manifest import load_project
from framework.manifest.diagnostics import Diagnostics
from framework.sql import check_workers, checks, environment, parsing
from framework.sql.checker import Checker
from framework.sql.parse_cache import ParseCache

REPO = Path(__file__).resolve().parents[3]


@pytest.fixture
def project(tmp_path, monkeypatch):
    """20 generated processors (2-6 joined inputs each), every other transform broken in one
    of the seeded ways (bench/seed_errors.py): every SQL rule reports something."""
    monkeypatch.setenv("PIPECTL_NO_CACHE", "1")
    sys.path.insert(0, str(REPO / "bench"))
    try:
        from gen_manifest import generate
        from seed_errors import seed
    finally:
        sys.path.remove(str(REPO / "bench"))
    root = generate(tmp_path / "proj", 20)
    assert seed(root, every=2) >= 8
    return root


def _check(root: Path, workers: int) -> tuple:
    environment._environment.cache_clear()
    project, _ = load_project(root)
    diags, spans, cache = Diagnostics(), checks.Spans(), ParseCache(None)
    checks.check_rendered_sql(project, diags, cache, spans=spans, workers=workers)
    return ([d.to_dict() for d in diags.items], [d.to_dict() for d in diags.notes],
            (spans.start, spans.end, spans.render, spans.report, spans.order), cache.entries)


def test_forked_checks_write_what_a_serial_run_writes(project, monkeypatch):
    serial = _check(project, 0)
    started = []
    start = check_workers.ForkedChecks.start

    def spy(checker, procs, workers):
        forked = start(checker, procs, workers)
        started.append(forked is not None)
        return forked

    monkeypatch.setattr(parsing, "POOL_MIN_JOBS", 1)
    monkeypatch.setattr(check_workers.ForkedChecks, "start", spy)
    assert _check(project, 2) == serial and started == [True]
    assert check_workers._SHARED is None  # the workers ended: the parent holds nothing for them
    codes = {d["code"] for d in serial[0]}
    assert {"sql-parse", "sql-render", "unknown-column", "transform-columns"} <= codes
    assert len(serial[3]) >= 20  # every distinct statement's parse is stored for the next run


def test_few_processors_are_not_forked(project):
    project_, _ = load_project(project)
    checker = Checker(project_, Diagnostics())
    assert check_workers.ForkedChecks.start(checker, list(project_.processors.values()), 2) is None  # < POOL_MIN_JOBS
    assert check_workers.ForkedChecks.start(checker, list(project_.processors.values()) * 40, 1) is None  # one worker


def test_a_cold_large_project_is_checked_on_workers_and_then_patched_after_an_edit(project, monkeypatch):
    """validate forks the checkers on a cold run of a large project; the record it writes lets
    the next run re-check one edited transform alone, with the output of a full run."""
    monkeypatch.delenv("PIPECTL_NO_CACHE")
    monkeypatch.setattr(validation, "LARGE_PROJECT_BYTES", 0)
    monkeypatch.setattr(parsing, "POOL_MIN_JOBS", 1)
    monkeypatch.setattr(check_workers, "workers_for_cold_run", lambda: 2)
    forks, rechecked = [], []
    start, recheck = check_workers.ForkedChecks.start, checks.recheck_transforms

    def spy(checker, procs, workers):
        forked = start(checker, procs, workers)
        if forked is not None:
            forks.append(workers)
        return forked

    monkeypatch.setattr(check_workers.ForkedChecks, "start", spy)
    monkeypatch.setattr(checks, "recheck_transforms", lambda p, names: rechecked.append(sorted(names)) or recheck(p, names))

    def lists(diags):
        return [d.to_dict() for d in diags.items], [d.to_dict() for d in diags.notes]

    cold = lists(validation.validate(project, replay=True))
    assert forks == [2] and cold[0]
    assert cold == lists(validation.validate(project))  # a serial full run (the parse cache exists now)
    path = project / "sql" / "raw_p00001.sql"
    path.write_text(path.read_text().replace("SELECT", "SELECT t0.nope AS zz,", 1))
    environment._environment.cache_clear()
    patched = lists(validation.validate(project, replay=True))
    assert rechecked == [["raw_p00001"]] and forks == [2]
    environment._environment.cache_clear()
    assert patched == lists(validation.validate(project)) and "zz" in str(patched)


@pytest.mark.timeout(120)  # the bug this guards against was a hang: multiprocessing.Pool waited for a dead worker
def test_a_worker_that_dies_is_an_error_not_a_hang(project, monkeypatch):
    """A checking worker killed mid-run (the OOM killer, a signal) ends validate with an
    error that says so, and nothing of the unfinished run is cached."""
    import os
    import signal

    from framework.errors import PipectlError

    parent = os.getpid()
    real = Checker.check_alone

    def dies_in_a_worker(self, proc):
        if os.getpid() != parent:
            os.kill(os.getpid(), signal.SIGKILL)
        return real(self, proc)

    monkeypatch.setattr(parsing, "POOL_MIN_JOBS", 1)
    monkeypatch.setattr(Checker, "check_alone", dies_in_a_worker)
    environment._environment.cache_clear()
    project_, _ = load_project(project)
    saved = []
    cache = ParseCache(None)
    monkeypatch.setattr(cache, "save", lambda: saved.append(True))
    with pytest.raises(PipectlError, match="worker process checking the SQL transforms ended abruptly") as err:
        checks.check_rendered_sql(project_, Diagnostics(), cache, workers=2)
    assert "PIPECTL_NO_POOL=1" in str(err.value) and saved == []
    assert check_workers._SHARED is None  # the workers are gone and the parent holds nothing for them
