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
        return self.rows_of([table], partition)[0]

    def rows_of(self, tables: list[Table], partition: Any) -> list[int]:
        """Rows of each table for ``partition``: the first call of the run for a partition
        also counts every wanted table; tables still unknown are counted together."""
        from framework.orchestrator.gates import count_rows
        from framework.run.decisions import count_all

        part = str(partition)
        todo = [t for t in tables if (t.fqn, part) not in self.counts]
        if todo and part not in self.primed:
            self.primed.add(part)
            todo = list({t.fqn: t for t in [*todo, *self.wanted.values()]}.values())
        existing = [t for t in todo if t.fqn in self.known and (t.fqn, part) not in self.counts]
        if existing:
            for t, n in zip(existing, count_all(self.warehouse, self.project, existing, partition)):
                self.counts[(t.fqn, part)] = n
        out = []
        for t in tables:
            if (t.fqn, part) not in self.counts:  # not known to exist: looked up (0 when missing)
                n = count_rows(self.warehouse, self.project, t, partition, self.known)
                if t.fqn in self.known:
                    self.counts[(t.fqn, part)] = n
                out.append(n)
            else:
                out.append(self.counts[(t.fqn, part)])
        return out

    def take(self, fqn: str, partition: Any) -> int | None:
        """Forget and return the count of a table about to be written (None: not known)."""
        return self.counts.pop((fqn, str(partition)), None)

    def set(self, fqn: str, partition: Any, n: int) -> None:
        self.counts[(fqn, str(partition))] = n


# a run's first count counts at most this many tables at once (a project of thousands of
# processors would otherwise plan one statement over thousands of tables); the rest are
# counted when a check needs them, a processor's together
MAX_PRIMED = 64


def run_tables(project: Project, phases: Iterable[str] | None = None,
               selected: Iterable[str] | None = None) -> list[Table]:
    """What a run's first count counts: the tables of the critical inputs of the run's
    processors (those of ``phases``, of ``selected`` when given) and of the quality gates
    of those phases' transitions, in phase order, at most :data:`MAX_PRIMED`."""
    from framework.sql.context import input_table

    names = set(phases) if phases is not None else None
    chosen = set(selected) if selected is not None else None
    out: dict[str, Table] = {}
    for phase in project.phases:
        if names is not None and phase.name not in names:
            continue
        for proc in project.processors_in(phase.name):
            if chosen is not None and proc.name not in chosen:
                continue
            for inp in proc.inputs:
                if inp.critical:
                    out.setdefault(input_table(project, inp)[0].fqn, input_table(project, inp)[0])
        for gate in (phase.transition.quality_gates if phase.transition else ()):
            gated = project.resolve_processor(gate.processor)
            if gated is not None and gated.output is not None:
                out.setdefault(gated.output.fqn, gated.output)
    return list(out.values())[:MAX_PRIMED]


__all__ = ["MAX_PRIMED", "PartitionRows", "run_tables"]
