"""Rows per (table, partition) that one driver run knows, so it counts them once.

Why: a one-entity update used to send a COUNT(*) per critical input of every processor that
ran (FM 23: never run on zero upstream rows) and one per quality gate (the orchestrator's
check before a trigger), each its own statement: on DuckDB a statement costs about a
millisecond of planning whatever it reads, and on BigQuery each is a job. Here the first
count a run needs counts every table the run may need (the critical inputs of every
processor, the quality gates' tables) in one statement, and the runner keeps each count
right as it writes:

* a selective write whose DELETE and INSERT report their rows (DuckDB's ``RETURNING``)
  moves its output's count by rows inserted into the partition minus rows deleted;
* a full batch reads its output's rows for the partition after the write (it did before):
  that is the count;
* any other write (a Python transform, a fan-out, a warehouse without ``RETURNING``) drops
  the count, which is then counted again, alone, when next needed.

A count is taken at the start of the run and moved only by the run's own writes: a table
someone else writes meanwhile (a landing table a scraper appends to) keeps the count read
at the start, as the critical-input check already trusted a table found non-empty earlier
in the run. On DuckDB no other process can write while the run holds the file.
"""
from __future__ import annotations

from typing import Any, Iterable

from framework.manifest.model import Project, Table


class PartitionRows:
    """Counts of (table, partition) for one run. ``known``: tables known to exist (the
    run's catalog listing); ``wanted``: the tables the first count counts together."""

    def __init__(self, warehouse: Any, project: Project, wanted: Iterable[Table], known: set[str]):
        self.warehouse, self.project, self.known = warehouse, project, known
        self.wanted = {t.fqn: t for t in wanted}
        self.counts: dict[tuple[str, str], int] = {}
        self.primed: set[str] = set()

    def rows(self, table: Table, partition: Any) -> int:
        """Rows of ``table`` for ``partition`` (0 when it does not exist)."""
        from framework.orchestrator.gates import count_rows

        part = str(partition)
        if (table.fqn, part) in self.counts:
            return self.counts[(table.fqn, part)]
        if part not in self.primed:
            self.primed.add(part)
            self._prime(table, partition)
            if (table.fqn, part) in self.counts:
                return self.counts[(table.fqn, part)]
        n = count_rows(self.warehouse, self.project, table, partition, self.known)
        if table.fqn in self.known:
            self.counts[(table.fqn, part)] = n
        return n

    def _prime(self, table: Table, partition: Any) -> None:
        """Count every wanted table that exists (and ``table``) in one statement."""
        from framework.run.runner_io import count_all

        tables = [t for t in {**self.wanted, table.fqn: table}.values()
                  if t.fqn in self.known and (t.fqn, str(partition)) not in self.counts]
        if not tables:
            return
        for t, n in zip(tables, count_all(self.warehouse, self.project, tables, partition)):
            self.counts[(t.fqn, str(partition))] = n

    def take(self, fqn: str, partition: Any) -> int | None:
        """Forget and return the count of a table about to be written (None: not known)."""
        return self.counts.pop((fqn, str(partition)), None)

    def set(self, fqn: str, partition: Any, n: int) -> None:
        self.counts[(fqn, str(partition))] = n


def run_tables(project: Project) -> list[Table]:
    """What a run's first count counts: every critical input's table and every quality
    gate's table (the checks a run may make)."""
    from framework.sql.context import input_table

    out: dict[str, Table] = {}
    for proc in project.processors.values():
        for inp in proc.inputs:
            if inp.critical:
                table, _ = input_table(project, inp)
                out.setdefault(table.fqn, table)
    for phase in project.phases:
        for gate in (phase.transition.quality_gates if phase.transition else ()):
            proc = project.resolve_processor(gate.processor)
            if proc is not None and proc.output is not None:
                out.setdefault(proc.output.fqn, proc.output)
    return list(out.values())


__all__ = ["PartitionRows", "run_tables"]
