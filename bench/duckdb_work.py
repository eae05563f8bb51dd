"""What DuckDB did for each phase, from its own profiler: rows scanned, execution CPU, planning.

Wall and CPU seconds of a phase mix two things: a fixed cost per statement (parse, bind,
optimise, plan: ~1-10 ms each on DuckDB, the same for one player or 450) and the work that
grows with the data (rows scanned, execution CPU). ``bench_pipeline --work`` separates them
with DuckDB's JSON profiler (``profiling_coverage='ALL'``, one JSON file per statement):

* ``rows``: ``query.total_rows_scanned``, rows read from tables by every operator;
* ``exec``: ``query.cpu_time``, CPU seconds of the operators (execution, not planning);
* ``plan``: ``planner`` + ``optimizer`` + ``physical_planner`` total times;
* ``statements``: statements profiled.

The profiler writes its file when a statement's result has been consumed, so each record is
read (and the file removed) just before the next statement and at every phase boundary;
a statement that writes no file adds nothing. Profiling costs time itself: figures from a
``--work`` pass are never mixed with the timed rounds.
"""
from __future__ import annotations

import contextlib
import json
import os
import tempfile
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator


@dataclass
class Work:
    rows: int = 0
    exec_seconds: float = 0.0
    plan_seconds: float = 0.0
    statements: int = 0

    def add(self, record: dict[str, Any]) -> None:
        query = record.get("query", {})
        self.rows += int(query.get("total_rows_scanned", 0))
        self.exec_seconds += float(query.get("cpu_time", 0.0))
        self.plan_seconds += sum(float(record.get(part, {}).get("total_time", 0.0))
                                 for part in ("planner", "optimizer", "physical_planner"))
        self.statements += 1


@dataclass
class WorkMeter:
    """Per-phase :class:`Work` of every DuckDB connection opened while :meth:`attach` is active."""

    path: str = field(default_factory=lambda: os.path.join(tempfile.mkdtemp(prefix="pipectl-prof-"), "profile.json"))
    phase: str | None = None
    by_phase: dict[str, Work] = field(default_factory=dict)

    def collect(self) -> None:
        try:
            with open(self.path, encoding="utf-8") as fh:
                record = json.load(fh)
        except FileNotFoundError:
            return
        os.unlink(self.path)
        if self.phase is not None and not str(record.get("query", {}).get("sql", "")).lstrip().upper().startswith("SET "):
            self.by_phase.setdefault(self.phase, Work()).add(record)

    def progress(self, event: str, data: dict[str, Any]) -> None:
        """A pipeline progress callback: statements between phase_start and phase_done count for the phase."""
        if event == "phase_start":
            self.collect()
            self.phase = data["phase"]
        elif event == "phase_done":
            self.collect()
            self.phase = None

    def take(self) -> dict[str, Work]:
        self.collect()
        out, self.by_phase = self.by_phase, {}
        return out

    @contextlib.contextmanager
    def attach(self, warehouse: Any) -> Iterator["WorkMeter"]:
        """Profile ``warehouse``'s open connection and every connection it opens in the block."""
        from framework.backends.duckdb import DuckDBWarehouse

        real_open = DuckDBWarehouse._open

        def profiled_open(wh: Any) -> Any:
            return _Profiled(real_open(wh), self)

        DuckDBWarehouse._open = profiled_open  # type: ignore[method-assign]
        held = warehouse._con
        if held is not None:
            warehouse._con = _Profiled(held, self)
        try:
            yield self
        finally:
            DuckDBWarehouse._open = real_open  # type: ignore[method-assign]
            if held is not None:
                warehouse._con = held
                _profiling_off(held)


class _Profiled:
    def __init__(self, con: Any, meter: WorkMeter) -> None:
        self._con, self._meter = con, meter
        con.execute("PRAGMA enable_profiling='json'")
        # SET takes no query parameter; the path is mkdtemp's, quoted as a SQL literal
        con.execute("SET profiling_output = '" + meter.path.replace("'", "''") + "'")
        con.execute("SET profiling_coverage = 'ALL'")
        meter.collect()  # drop the SETs' own records

    def execute(self, sql: str, params: Any = None) -> Any:
        self._meter.collect()
        return self._con.execute(sql, params) if params else self._con.execute(sql)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._con, name)


def _profiling_off(con: Any) -> None:
    con.execute("PRAGMA disable_profiling")

