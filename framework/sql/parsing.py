"""Parse rendered SQL with sqlglot for ``pipectl validate``: one statement, or many on all cores.

Parsing is most of validate's time on large projects, so each distinct transform is parsed
once, in the dialect users deploy (BigQuery), and the other dialect is *derived* from the
parsed tree (sqlglot generates it, raising on constructs the target cannot express) instead
of being rendered and parsed a second time. Trees never leave this module: callers get a
small :data:`Result` tuple that pickles cheaply (process pool) and serialises to the
parse cache as JSON.

Many distinct statements (a 10,000-processor manifest) are parsed by a pool of forked
worker processes, one per core: the results are independent, the inputs are text.
"""
from __future__ import annotations

import os
import re
from contextlib import contextmanager
from typing import Any, Iterable, Iterator, Sequence

# (error or None, named columns of the last SELECT or None, ((placeholder index, column), ...),
#  lineage facts or None (framework.sql.lineage), error deriving the other dialect or None)
Result = tuple

POOL_MIN_JOBS = 400  # below this a pool's start-up costs more than it saves
PLACEHOLDER = "__ref{index}.__t"  # what ref()/source() return while checking: stays a table name


def parse_statement(sql: str, dialect: str, reads: bool = False, schema: dict | None = None,
                    derive: str | None = None, key_columns: frozenset | None = None) -> Result:
    """Parse ``sql`` in the sqlglot ``dialect`` once; with ``reads``, also the columns read
    through placeholder tables; with ``schema`` (placeholder -> declared columns), the column
    lineage facts (``key_columns``: the entity keys whose expressions lineage keeps); with
    ``derive``, generate the tree in that sqlglot dialect too."""
    import sqlglot
    from sqlglot import exp
    from sqlglot.errors import ErrorLevel, SqlglotError

    try:
        trees = [t for t in _parse(sqlglot, sql, dialect) if t is not None]
    except SqlglotError as exc:
        return first_line(str(exc)), None, (), None, None
    if not trees:
        return "renders no SQL statement", None, (), None, None
    read_columns = qualified_reads(trees) if reads else ()
    last = trees[-1]
    named = None
    if isinstance(last, exp.Query) and not any(isinstance(s, exp.Star) or s.find(exp.Star) for s in last.selects):
        named = tuple(last.named_selects)
    facts = None
    if schema is not None:  # lineage rewrites the tree in place; deriving (below) only reads what is left
        from framework.sql.lineage import analyze

        facts = analyze(last, dialect, schema, key_columns)
    derived_error = None
    if derive is not None:
        target = sqlglot.Dialect.get_or_raise(derive)
        try:
            for tree in trees:  # copy=False: the trees are not used again, and copying costs as much as generating
                target.generate(tree, copy=False, unsupported_level=ErrorLevel.RAISE)
        except SqlglotError as exc:
            derived_error = first_line(str(exc))
    return None, named, read_columns, facts, derived_error


# Parser classes whose implicit-UNNEST pass this process has switched off (pool workers only,
# see :func:`worker_init`).
_NO_IMPLICIT_UNNEST: set[type] = set()


def _parse(sqlglot: Any, sql: str, dialect: str) -> list:
    """``sqlglot.parse(sql, read=dialect)``, faster in a pool worker, with the same trees.

    BigQuery's parser turns ``FROM t, t.arr`` into ``FROM t CROSS JOIN UNNEST(t.arr)``: for
    every SELECT it deep-copies and normalises the FROM table and every joined table to look
    for a join *without* ``ON`` to a path through an earlier alias. That pass (a quarter of a
    typical transform's parse, compiled sqlglot) changes nothing when every join has an ON,
    so a worker parses with it off and parses again with it on (the tree or error sqlglot
    gives normally) when the statement does not parse or any join lacks an ON."""
    parser_class = sqlglot.Dialect.get_or_raise(dialect).parser_class
    if parser_class not in _NO_IMPLICIT_UNNEST:
        return sqlglot.parse(sql, read=dialect)
    from sqlglot import exp
    from sqlglot.errors import SqlglotError

    try:
        trees = sqlglot.parse(sql, read=dialect)
        if not any(not join.args.get("on") for tree in trees if tree is not None for join in tree.find_all(exp.Join)):
            return trees
    except SqlglotError:
        pass
    parser_class.SUPPORTS_IMPLICIT_UNNEST = True
    try:
        return sqlglot.parse(sql, read=dialect)
    finally:
        parser_class.SUPPORTS_IMPLICIT_UNNEST = False


def worker_init() -> None:
    """Runs first in every parse worker (a process of its own, one thread: a class-level
    switch affects nothing else): the implicit-UNNEST pass off, see :func:`_parse`."""
    import sqlglot

    for name in ("bigquery", "duckdb"):
        parser_class = sqlglot.Dialect.get_or_raise(name).parser_class
        if getattr(parser_class, "SUPPORTS_IMPLICIT_UNNEST", False) is True:
            parser_class.SUPPORTS_IMPLICIT_UNNEST = False
            _NO_IMPLICIT_UNNEST.add(parser_class)


def _job(args: tuple) -> Result:
    return parse_statement(*args)


def parse_many(jobs: Sequence[tuple], workers: int | None = None) -> list[Result]:
    """``parse_statement(*job)`` for every job, on a pool of forked workers when the jobs are
    many and the machine has several cores, else in this process. Same results either way."""
    return list(iter_parse(jobs, workers))


def iter_parse(jobs: Sequence[tuple], workers: int | None = None) -> Iterator[Result]:
    """:func:`parse_many`, yielding results in job order as they arrive (the caller stores
    each compactly instead of holding every result at once)."""
    workers = workers if workers is not None else (os.cpu_count() or 1)
    if workers < 2 or len(jobs) < POOL_MIN_JOBS or not can_fork():
        for j in jobs:
            yield parse_statement(*j)
        return
    chunk = max(16, len(jobs) // (workers * 8))
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor

    with frozen_heap(), ProcessPoolExecutor(max_workers=workers, mp_context=mp.get_context("fork"), initializer=worker_init) as executor:
        yield from worker_results(executor.map(_job, jobs, chunksize=chunk))


def worker_results(results: Iterator[Any]) -> Iterator[Any]:
    """The results of a pool of checking workers, with a worker that died turned into an
    error that says so (the executor raises ``BrokenProcessPool``; nothing is cached from a
    run that did not finish)."""
    from concurrent.futures.process import BrokenProcessPool

    from framework.errors import PipectlError

    try:
        yield from results
    except BrokenProcessPool as exc:
        raise PipectlError("a worker process checking the SQL transforms ended abruptly (killed, or out of memory); "
                           "nothing was cached from this run",
                           hint="run validate again; PIPECTL_NO_POOL=1 checks everything in one process, with less memory") from exc


@contextmanager
def frozen_heap() -> Iterator[None]:
    """Keep the objects alive now (the resolved model of 10,000 processors) out of the cycle
    collector until the block ends (``gc.freeze``). A process forked from a large heap
    otherwise scans all of it at every full collection, and parsing triggers many (sqlglot
    trees are cyclic): a fifth of the workers' CPU at 10,000 processors, plus the
    copy-on-write of every page the scan touches. Nested blocks freeze once."""
    import gc

    if gc.get_freeze_count():
        yield
        return
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


def can_fork() -> bool:
    import multiprocessing as mp

    return "fork" in mp.get_all_start_methods() and not os.environ.get("PIPECTL_NO_POOL")


def qualified_reads(trees: Iterable) -> tuple[tuple[int, str], ...]:
    """(placeholder index, column) for every column read through an alias of a ref()'d table.

    One walk per SELECT that reads a placeholder (not one per table: a SELECT joining six
    inputs was walked twelve times)."""
    from sqlglot import exp

    reads: set[tuple[int, str]] = set()
    for tree in trees:
        by_select: dict[int, tuple] = {}
        for table in tree.find_all(exp.Table):
            select = table.parent_select
            if select is None:
                continue
            entry = by_select.get(id(select))
            if entry is None:
                entry = by_select[id(select)] = (select, [], [])
            entry[1].append(table)
        for select, tables, _ in by_select.values():
            placeholders = [t for t in tables if t.db.startswith("__ref") and t.name == "__t"]
            if not placeholders:
                continue
            only_source = len(tables) == 1 and not select.args.get("joins")
            columns = [(col.table, col) for col in select.find_all(exp.Column)]
            for table in placeholders:
                index = int(table.db[len("__ref"):])
                alias = table.alias_or_name
                for col_table, col in columns:
                    # whether an unqualified column is the SELECT's own: asked only when it can matter
                    if col_table == alias or (only_source and not col_table and col.parent_select is select):
                        reads.add((index, "*" if isinstance(col.this, exp.Star) else col.name))
    return tuple(sorted(reads))


def first_line(text: str) -> str:
    line = text.strip().splitlines()[0] if text.strip() else text
    return re.sub(r"\x1b\[[0-9;]*m", "", line)
