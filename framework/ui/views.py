"""What each page shows, gathered from the same library functions the CLI calls.

`pipectl status` is :func:`framework.orchestrator.service.status`, `history` is
:class:`RunHistory`, `trace` is :func:`build_trace`, `render` is :func:`render_statement`,
`bus dead-letters` is :func:`list_dead_letters`, `--select` is :meth:`PipelineGraph.select`:
the pages call exactly those, so the UI never disagrees with the CLI. This module only
reshapes their results into what a template needs (dicts and small dataclasses); it never
holds a backend open between requests, so `pipectl run` in another shell keeps its DuckDB
file and ledger to itself.
"""
from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

STATEMENTS = ("detect", "transform", "merge")
DIALECTS = ("duckdb", "bigquery")
GRID_STATES = ("complete", "partial", "running", "blocked", "failed", "missing")


_PROJECTS: dict[tuple[str, str | None], tuple[Any, Any]] = {}


def _stamp(project: Any) -> tuple:
    """(path, mtime, size) of every file the project was loaded from."""
    out = []
    for name in (*project.files, "pipectl.yaml"):  # the target's prefixes live in pipectl.yaml
        try:
            st = (Path(project.root) / name).stat()
            out.append((name, st.st_mtime_ns, st.st_size))
        except OSError:
            out.append((name, None, None))
    return tuple(out)


@dataclass(frozen=True)
class Source:
    """Where the UI reads from: a project folder and a target of its pipectl.yaml."""

    root: str
    target: str | None = None

    def project(self) -> Any:
        """The loaded project as the target sees it (its dataset/topic prefixes), reloaded only
        when one of its manifest files or pipectl.yaml changed (pages poll every few seconds;
        parsing the YAML is most of a page's cost)."""
        from framework.backends.registry import target_project

        key = (self.root, self.target)
        cached = _PROJECTS.get(key)
        if cached is not None and cached[0] == _stamp(cached[1]):
            return cached[1]
        project = target_project(self.root, self.target)
        _PROJECTS[key] = (_stamp(project), project)
        return project

    def graph(self) -> Any:
        from framework.graph.graph import PipelineGraph

        return PipelineGraph(self.project())

    @contextmanager
    def backends(self) -> Iterator[Any]:
        from framework.backends.registry import open_backends

        backends = open_backends(self.root, self.target)
        try:
            yield backends
        finally:
            backends.close()


# ----------------------------------------------------------------------------- runs
def runs(store: Any, **where: Any) -> list[Any]:
    from framework.run.history import RunHistory

    return RunHistory(store).list(limit=None, **where)


def last_runs(store: Any, partition: str) -> dict[str, dict[str, Any]]:
    """The newest run of each processor for ``partition`` (what colours a node)."""
    out: dict[str, dict[str, Any]] = {}
    for run in runs(store, partition=partition):  # newest first
        out.setdefault(run.processor, run.to_dict())
    return out


def partitions(store: Any, statuses: list[Any]) -> list[str]:
    """Every partition the ledger or the run history knows, newest first."""
    seen = {s.partition for s in statuses} | {r.partition for r in runs(store)}
    return sorted((p for p in seen if p), reverse=True)


# ----------------------------------------------------------------------------- pipeline
def pipeline(src: Source, partition: str | None, selectors: list[str]) -> dict[str, Any]:
    from framework.graph.graph import SelectionError
    from framework.orchestrator.service import status
    from framework.ui.layout import lay_out

    graph = src.graph()
    error = None
    names = None
    if selectors:
        try:
            names = graph.select(selectors)
        except SelectionError as exc:
            error = str(exc)
    statuses = status(src.root, src.target)
    with src.backends() as b:
        dates = partitions(b.state, statuses)
        partition = partition or (dates[0] if dates else None)
        last = last_runs(b.state, partition) if partition else {}
    layout = lay_out(graph, names, last)
    counts: dict[str, int] = {}
    for node in layout.nodes:
        counts[node.status] = counts.get(node.status, 0) + 1
    return {"layout": layout, "partition": partition, "partitions": dates, "select": " ".join(selectors),
            "selection_error": error, "counts": counts, "project": graph.project}


# ----------------------------------------------------------------------------- processor
def manifest_excerpt(location: Any) -> tuple[str, str]:
    """The YAML of a manifest entry (from its line to the next entry at its indentation)
    and ``file:line``; ('', '') when the location is unknown."""
    if not location or not getattr(location, "file", None) or not location.line:
        return "", ""
    lines = Path(location.file).read_text(encoding="utf-8").splitlines()
    start = location.line - 1
    first = lines[start]
    indent = len(first) - len(first.lstrip(" -"))
    dash_indent = len(first) - len(first.lstrip(" "))
    out = [first]
    for line in lines[start + 1:]:
        stripped = line.lstrip(" ")
        here = len(line) - len(stripped)
        if stripped and (here < indent or (here == dash_indent and stripped.startswith("-"))):
            break
        out.append(line)
    while out and not out[-1].strip():
        out.pop()
    return "\n".join(out), f"{location.file}:{location.line}"


def statements(proc: Any) -> list[str]:
    """The statements a processor has: no detection without inputs, no SQL transform for a
    Python one, no merge without an output table."""
    skip = {"detect": not proc.inputs, "transform": bool(proc.transform.python), "merge": proc.output is None}
    return [kind for kind in STATEMENTS if not skip[kind]]


def rendered_sql(project: Any, name: str) -> list[dict[str, Any]]:
    """Each statement of ``name`` in both dialects, with its query parameters (or the error
    that rendering gave, shown where the SQL would be)."""
    from framework.errors import PipectlError
    from framework.sql.dialects import get_dialect
    from framework.sql.render import render_statement

    out = []
    kinds = statements(project.processors[name])
    unfolded = ("transform" if "transform" in kinds else kinds[0] if kinds else None, "duckdb")
    for kind in kinds:
        for dialect in DIALECTS:
            try:
                r = render_statement(project, name, kind, dialect)
                out.append({"kind": kind, "dialect": dialect, "sql": r.sql, "error": None, "open": (kind, dialect) == unfolded,
                            "params": [get_dialect(dialect).param(p) for p in r.params]})
            except PipectlError as exc:
                out.append({"kind": kind, "dialect": dialect, "sql": "", "params": [], "error": exc.render(),
                            "open": (kind, dialect) == unfolded})
    return out


def processor(src: Source, name: str, with_history: bool = True, project: Any = None) -> dict[str, Any] | None:
    """``with_history=False`` (the static site) reads the manifests only, no backend."""
    project = project or src.project()
    proc = project.resolve_processor(name)
    if proc is None:
        return None
    yaml_text, where = manifest_excerpt(proc.location)
    mappings = [m for m in project.entity_mappings if proc.entity in (m.source, m.target)]
    history: list[dict[str, Any]] = []
    if with_history:
        with src.backends() as b:
            history = [r.to_dict() for r in runs(b.state, processor=proc.name)[:50]]
    from framework.graph.graph import PipelineGraph

    graph = PipelineGraph(project)
    return {"proc": proc, "project": project, "yaml": yaml_text, "where": where, "mappings": mappings,
            "entity": project.entity_kinds.get(proc.entity) if proc.entity else None,
            "downstream": sorted(graph.succ[proc.name]),
            "sql": rendered_sql(project, proc.name), "history": history}


# ----------------------------------------------------------------------------- partitions
def cell(status: Any | None, phase_runs: list[Any]) -> dict[str, Any]:
    """One grid cell: a phase on a partition, from its transition's status row and runs."""
    running = [r.processor for r in phase_runs if r.status == "running"]
    failed_runs = {r.processor: r.error for r in phase_runs if r.status == "failed"}
    if status is None:
        if running:
            return {"state": "running", "reason": f"running: {', '.join(sorted(set(running)))}"}
        if failed_runs:
            return {"state": "failed", "reason": _failures(failed_runs)}
        return {"state": "missing", "reason": "no completion recorded for this phase and partition"}
    done = f"{len(status.completed)}/{len(status.expected)} complete"
    if status.failed:
        errors = {n: failed_runs.get(n) for n in status.failed}
        return {"state": "failed", "reason": f"{done}; failed: {_failures(errors)}"}
    if status.verdict in ("blocked", "expired", "gate_failed"):
        return {"state": "blocked", "reason": f"{status.verdict}: {status.reason}"}
    if status.state in ("triggered", "monitored") or status.verdict == "fire":
        if status.missing or status.partial:
            missing = f"; missing: {', '.join(status.missing)}" if status.missing else ""
            partial = f"; partial: {', '.join(status.partial)}" if status.partial else ""
            return {"state": "partial", "reason": f"{done}{missing}{partial}"}
        return {"state": "complete", "reason": f"{done}; {status.reason}"}
    return {"state": "running", "reason": f"{done}; waiting: {status.reason}"}


def _failures(errors: dict[str, str | None]) -> str:
    return "; ".join(f"{n}: {e}" if e else n for n, e in sorted(errors.items()))


def grid(src: Source, limit: int = 60) -> dict[str, Any]:
    from framework.orchestrator.service import status

    project = src.project()
    statuses = status(src.root, src.target)
    by_key = {}
    for s in statuses:
        by_key[(s.partition, s.transition.split("->")[0])] = s
    with src.backends() as b:
        all_runs = runs(b.state)
        dates = partitions(b.state, statuses)[:limit]
    runs_by: dict[tuple[str, str], list[Any]] = {}
    seen: set[tuple[str, str]] = set()
    for r in all_runs:  # newest first: a processor's last run per partition speaks for it
        if (r.partition, r.processor) in seen:
            continue
        seen.add((r.partition, r.processor))
        runs_by.setdefault((r.partition, r.phase), []).append(r)
    phases = project.phase_names()
    rows = [{"partition": d, "cells": [dict(cell(by_key.get((d, p)), runs_by.get((d, p), [])), phase=p) for p in phases]}
            for d in dates]
    return {"phases": phases, "rows": rows, "states": GRID_STATES}


def partition(src: Source, date: str) -> dict[str, Any]:
    from framework.orchestrator.service import status

    rows = status(src.root, src.target, date)
    with src.backends() as b:
        history = [r.to_dict() for r in runs(b.state, partition=date)]
    correlations: dict[str, float] = {}
    for r in history:
        if r["correlation_id"]:
            correlations[r["correlation_id"]] = max(correlations.get(r["correlation_id"], 0), r["started_at"])
    return {"partition": date, "statuses": [s.to_dict() for s in rows], "runs": history,
            "correlations": sorted(correlations, key=correlations.get, reverse=True)}


# ----------------------------------------------------------------------------- trace, alerts, dead letters
def trace(src: Source, correlation_id: str) -> dict[str, Any]:
    from framework.drive.trace import build_trace

    project = src.project()
    with src.backends() as b:
        tree = build_trace(project, b.state, correlation_id)
    start = _earliest(tree)
    return {"correlation_id": correlation_id, "tree": tree, "start": start,
            "hops": sum(1 for _ in _walk(tree)) - 1}


def _walk(node: Any) -> Iterator[Any]:
    yield node
    for child in node.children:
        yield from _walk(child)


def _earliest(tree: Any) -> float | None:
    times = [n.data.get("started_at") or n.data.get("received_at") for n in _walk(tree)]
    times = [t for t in times if t]
    return min(times) if times else None


def recent_correlations(src: Source, limit: int = 30) -> list[dict[str, Any]]:
    """Correlation ids of recent runs (what the trace index lists), newest first."""
    with src.backends() as b:
        found: dict[str, dict[str, Any]] = {}
        for r in runs(b.state):
            if r.correlation_id and r.correlation_id not in found:
                found[r.correlation_id] = {"id": r.correlation_id, "partition": r.partition, "mode": r.mode,
                                           "started_at": r.started_at, "runs": 0}
            if r.correlation_id:
                found[r.correlation_id]["runs"] += 1
    return list(found.values())[:limit]


def alerts(src: Source, limit: int = 100) -> list[dict[str, Any]]:
    from framework.alerts.alert_log import recent_alerts

    with src.backends() as b:
        return recent_alerts(b.state, limit)


def dead_letters(src: Source) -> dict[str, Any]:
    from framework.drive.dead_letters import list_dead_letters

    project = src.project()
    unreadable: list[str] = []
    with src.backends() as b:
        letters = list_dead_letters(b.bus, project, b.state, None, unreadable)
    return {"letters": [d.to_dict() for d in letters], "unreadable": unreadable}
