"""Check the transforms of a large project on forked workers: render, parse and report.

Why: a cold ``pipectl validate`` of 10,000 processors is mostly per-transform work that
needs nothing from the other transforms: render the file with placeholder tables, parse it,
derive its column lineage, and compare that with the manifest. Parsing alone on workers (the
way before) left rendering and reporting, a third of the run, serial in the main process,
one core idle while it loaded and reported. Here the workers are forked *after* the project
is loaded (copy-on-write: nothing is copied or pickled to them) and each checks whole
processors, a chunk at a time; the main process checks the template statements meanwhile,
then puts each processor's diagnostics where a serial run writes them (every render part,
then every report part, in processor order) and stores the parse results in the cache.

The model is kept out of the cycle collector before the fork (``gc.freeze``, the caller's
:func:`framework.sql.parsing.frozen_heap`, or here): a collection in a worker would walk
every object of the model and dirty its pages. Output is byte for byte a serial run's
(tests/unit/sql/test_check_workers.py).
"""
from __future__ import annotations

import os
from typing import Any, Iterator

from framework.manifest.diagnostics import Diagnostics

CHUNK = 48  # processors per task: small enough to balance two workers, large enough to amortise a task
# What forked workers check: (checker, processors), set in the parent just before the pool
# forks and kept until the workers end (the executor forks its workers on the first tasks); a
# worker inherits it (nothing is pickled).
_SHARED: tuple[Any, list] | None = None


def _check_chunk(bounds: tuple[int, int]) -> list[tuple[Diagnostics, Diagnostics | None, list[tuple[str, bytes]]]]:
    assert _SHARED is not None, "check_workers: a worker without the shared checker (not forked?)"
    checker, procs = _SHARED
    return [checker.check_alone(proc) for proc in procs[bounds[0]:bounds[1]]]


class ForkedChecks:
    """Workers checking a list of processors' transforms, started by :meth:`start`; the
    caller does other work, then :meth:`finish` merges and :meth:`close` ends them."""

    def __init__(self, checker: Any, procs: list, pool: Any, results: Iterator, frozen: bool):
        self.checker, self.procs, self.pool, self.results, self.frozen = checker, procs, pool, results, frozen

    @classmethod
    def start(cls, checker: Any, procs: list, workers: int) -> "ForkedChecks | None":
        """Fork ``workers`` processes checking ``procs`` (None, and nothing forked, for fewer
        than two workers, too few processors to pay for the fork, or no ``fork``)."""
        import gc
        import multiprocessing as mp
        from concurrent.futures import ProcessPoolExecutor

        from framework.sql.parsing import POOL_MIN_JOBS, worker_init, can_fork

        if workers < 2 or len(procs) < POOL_MIN_JOBS or not can_fork():
            return None
        global _SHARED
        frozen = not gc.get_freeze_count()
        if frozen:
            gc.freeze()
        _SHARED = (checker, procs)
        chunks = [(i, min(i + CHUNK, len(procs))) for i in range(0, len(procs), CHUNK)]
        try:
            # an executor, not multiprocessing.Pool: a worker that dies (killed, out of memory)
            # breaks the executor and the results raise, where a Pool waits for it forever
            pool = ProcessPoolExecutor(max_workers=workers, mp_context=mp.get_context("fork"), initializer=worker_init)
            results = pool.map(_check_chunk, chunks)
        except BaseException:
            _SHARED = None
            if frozen:
                gc.unfreeze()
            raise
        return cls(checker, procs, pool, results, frozen)

    def finish(self, spans: Any = None) -> None:
        """Take every processor's results, in order: render parts into the diagnostics now,
        report parts after all of them (where a serial run writes them), parse results into
        the cache. ``spans`` (framework.sql.checks.Spans) learns where each part went."""
        d, cache = self.checker.diags, self.checker.cache
        if spans is not None:
            spans.start = (len(d.items), len(d.notes))
        from framework.sql.parsing import worker_results

        reports: list[tuple[str, Diagnostics]] = []
        procs = iter(self.procs)
        for chunk in worker_results(self.results):
            for rendered, reported, entries in chunk:
                name = next(procs).name
                before = (len(d.items), len(d.notes))
                d.items.extend(rendered.items)
                d.notes.extend(rendered.notes)
                if spans is not None:
                    spans.order.append(name)
                    spans.render[name] = before + (len(d.items), len(d.notes))
                if reported is not None:
                    reports.append((name, reported))
                for key, blob in entries:
                    cache.entries[key] = blob
                    cache.dirty = True
        for name, reported in reports:
            before = (len(d.items), len(d.notes))
            d.items.extend(reported.items)
            d.notes.extend(reported.notes)
            if spans is not None:
                spans.report[name] = before + (len(d.items), len(d.notes))
        if spans is not None:
            spans.end = (len(d.items), len(d.notes))

    def close(self) -> None:
        import gc

        global _SHARED
        self.pool.shutdown(wait=True, cancel_futures=True)  # after an error: the chunks not started are dropped
        _SHARED = None
        if self.frozen:
            gc.unfreeze()


def workers_for_cold_run() -> int:
    """How many workers a cold check of a large project forks: one per core."""
    return os.cpu_count() or 1
