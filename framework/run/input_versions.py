"""Input versions: skip a processor whose inputs did not change, without a warehouse query.

Change detection (:mod:`framework.run.changes`) answers "which entities changed" with one
query over every input of the partition. At a few hundred entities that query costs as much
as the full batch (the warehouse's planning of a many-input query is the whole cost), so an
incremental run that asks it of every dispatched processor is no faster than a full one. Most
dispatched processors have nothing to do: their inputs were not written since they last ran.
This module lets the runner know that from the state store alone.

* Every run that writes a processor's rows first stores a new **output version** of
  (processor, partition): its run id (before writing, so a crash mid-write can only make
  downstream look again, never miss a write).
* A trigger that names the landing sources it changed (``metadata.sources_changed``, what a
  scraper or ``pipectl simulate update`` publishes) bumps those **source versions**.
* A run that finished ``success`` or ``no_data`` by detection or a full batch stores what it
  **saw**: the versions of everything its detection reads (input tables and the tables of
  entity mappings), read before it started. A ``failed`` or ``partial`` run clears it.

Before detection, a processor whose stored "seen" equals the current versions has inputs
that no run wrote since it last processed them all: detection would find nothing, so the
run ends ``no_data`` without a query. An output version also carries the **entity list** of
the run that wrote it (``writes``: the last few writes, each with the version it replaced
and its entities, None for a full batch or a list too long to keep): a processor whose
inputs were rewritten only by selective runs takes its entities from those lists instead of
a detection query (:mod:`framework.run.candidates`). The runner only asks when the driver says so
(``RunRequest.trust_versions``: incremental rounds), and a processor reading a landing
source is only skipped when its trigger named the changed sources
(``RunRequest.sources_announced``); a source edited without a trigger saying so is found by
a run that does not name sources (``pipectl run``) or a full run, like a scraper that
landed rows and published nothing. Documents live in the state store, collection
``pipectl_input_versions``, key ``processor|partition`` (``source:name|partition``).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable

from framework.manifest.model import Processor, Project

INPUT_VERSIONS = "pipectl_input_versions"
# writes kept per output version document, and entity ids per write: beyond them a write
# counts as "no entity list" (downstream detects), and a document stays small (FM 16)
MAX_WRITES = 16
MAX_WRITE_ENTITIES = 500


@dataclass(frozen=True)
class Dependencies:
    """What a processor's detection reads: upstream processors, landing sources. ``exact``
    is False when a table it reads is not partitioned (any run of its producer, for any
    partition, may change it), or a name resolves to neither: never skipped then."""

    processors: tuple[str, ...]
    sources: tuple[str, ...]
    exact: bool


def dependencies(project: Project, proc: Processor) -> Dependencies:
    """The producers of every table ``proc``'s change detection reads."""
    from framework.sql.context import input_specs

    by_table = {p.output.fqn: ("p", n) for n, p in project.processors.items() if p.output is not None}
    by_table.update({s.table.fqn: ("s", n) for n, s in project.sources.items()})
    procs: set[str] = set()
    sources: set[str] = set()
    exact = True
    for spec in input_specs(project, proc):
        for table in (spec.table, spec.mapping_table):
            if table is None:
                continue
            producer = by_table.get(table)
            if producer is None:
                exact = False
                continue
            kind, name = producer
            (procs if kind == "p" else sources).add(name)
            out = project.processors[name].output if kind == "p" else project.sources[name].table
            if out is None or out.column(project.partition_column) is None:
                exact = False
    return Dependencies(tuple(sorted(procs)), tuple(sorted(sources)), exact)


def _narrowed(doc: dict[str, Any], run: str, ids: list[str]) -> list[dict[str, Any]]:
    """The document's writes with the entity list of ``run`` cut down to ``ids``."""
    return [dict(w, entities=sorted(set(ids) & set(w["entities"])))
            if w.get("run") == run and w.get("entities") is not None else w for w in doc.get("writes") or []]


def _key(name: str, partition: Any) -> str:
    return f"{name}|{partition}"


def _source_key(name: str, partition: Any) -> str:
    return f"source:{name}|{partition}"


class InputVersions:
    """Output and source versions and what each processor saw, over a StateStore."""

    def __init__(self, project: Project, store: Any):
        self.project = project
        self.store = store
        self._deps: dict[str, Dependencies] = {}

    def deps(self, proc: Processor) -> Dependencies:
        if proc.name not in self._deps:
            self._deps[proc.name] = dependencies(self.project, proc)
        return self._deps[proc.name]

    def snapshot(self, proc: Processor, partition: Any) -> dict[str, Any]:
        """Current versions of everything ``proc`` reads (None: never written)."""
        deps = self.deps(proc)
        out: dict[str, Any] = {}
        for name in deps.processors:
            doc = self.store.get(INPUT_VERSIONS, _key(name, partition))
            out[name] = doc.get("version") if doc else None
        for name in deps.sources:
            doc = self.store.get(INPUT_VERSIONS, _source_key(name, partition))
            out[f"source:{name}"] = doc.get("version") if doc else None
        return out

    def unchanged(self, proc: Processor, partition: Any, snapshot: dict[str, Any], sources_announced: bool) -> bool:
        """True when no run wrote anything ``proc`` reads since it last processed everything."""
        deps = self.deps(proc)
        if not deps.exact or (deps.sources and not sources_announced):
            return False
        doc = self.last_run(proc, partition)
        return doc is not None and doc.get("seen") is not None and doc["seen"] == snapshot

    def last_run(self, proc: Processor, partition: Any) -> dict[str, Any] | None:
        """``proc``'s own document: its output version and writes, what its last complete
        run saw (``seen``) and how many entities that run counted (``total``)."""
        return self.store.get(INPUT_VERSIONS, _key(proc.name, partition))

    def mark_written(self, proc: Processor, partition: Any, run_id: str, entities: Iterable[str] | None = None) -> None:
        """A run of ``proc`` is about to write the partition's rows of ``entities`` (None:
        the whole partition): a new output version, and the write appended to ``writes``."""
        ids = None if entities is None else sorted({str(e) for e in entities})
        if ids is not None and len(ids) > MAX_WRITE_ENTITIES:
            ids = None
        key = _key(proc.name, partition)

        def txn(t: Any) -> None:
            doc = t.get(INPUT_VERSIONS, key) or {}
            writes = list(doc.get("writes") or [])
            writes.append({"run": run_id, "after": doc.get("version"), "entities": ids})
            t.set(INPUT_VERSIONS, key, {**doc, "version": run_id, "writes": writes[-MAX_WRITES:]})

        self.store.run_transaction(txn)

    def written_since(self, name: str, partition: Any, since: Any) -> list[str] | None:
        """Every entity whose rows processor ``name`` rewrote for the partition after its
        output version ``since`` (the union over the writes in between); None when one of
        those writes had no entity list or the chain back to ``since`` is no longer kept."""
        doc = self.store.get(INPUT_VERSIONS, _key(name, partition)) or {}
        by_run = {w.get("run"): w for w in doc.get("writes") or []}
        current, ids = doc.get("version"), set()
        for _ in range(len(by_run) + 1):
            if current == since:
                return sorted(ids)
            write = by_run.get(current)
            if write is None or write.get("entities") is None:
                return None
            ids.update(write["entities"])
            current = write.get("after")
        return None

    def finish(self, proc: Processor, partition: Any, seen: dict[str, Any] | None, total: int | None = None,
               written: tuple[str, list[str]] | None = None) -> None:
        """Store what a finished run saw (None: it left work undone, never skip it next), how
        many entities its partition had (kept for the runs that take change-sets) and, with
        ``written`` (run id, entities), the entities whose rows its write actually changed:
        its write's entity list narrows to them (what it marked before writing is a superset)."""
        key = _key(proc.name, partition)
        doc = self.store.get(INPUT_VERSIONS, key) or {}
        fields: dict[str, Any] = {"seen": seen}
        if total is not None:
            fields["total"] = total
        if written is not None:
            fields["writes"] = _narrowed(doc, *written)
        if all(doc.get(k) == v for k, v in fields.items()):
            return
        self._update(key, fields)

    def narrow(self, proc: Processor, partition: Any, run_id: str, ids: Iterable[str]) -> None:
        """Only: the write of ``run_id`` changed the rows of ``ids`` (a run that stores no
        "seen", e.g. a replay of named entities)."""
        key = _key(proc.name, partition)
        doc = self.store.get(INPUT_VERSIONS, key) or {}
        writes = _narrowed(doc, run_id, list(ids))
        if writes != doc.get("writes"):
            self._update(key, {"writes": writes})

    def announce_sources(self, names: Iterable[str], partition: Any, version: str) -> None:
        """Landing sources a trigger says changed get a new version (the trigger id)."""
        names = sorted(set(names))
        if not names:
            return

        def txn(t: Any) -> None:
            for name in names:
                t.set(INPUT_VERSIONS, _source_key(name, partition), {"version": version})

        self.store.run_transaction(txn)

    def announce_trigger(self, env: dict[str, Any], partition: Any) -> bool:
        """A trigger's ``metadata.sources_changed`` (the landing sources it says changed)
        bumps those sources' versions; True when it named them (then processors reading other
        sources may be skipped). An undeclared name makes the round trust no list: logged,
        and every source is compared. Shared by the local driver and the worker service."""
        import logging

        names = (env.get("metadata") or {}).get("sources_changed")
        if not isinstance(names, list):
            return False
        unknown = [n for n in names if n not in self.project.sources]
        if unknown:
            logging.getLogger(__name__).warning(
                "trigger %s names undeclared source(s) %s in sources_changed: every source is compared",
                env.get("trigger_id"), ", ".join(map(str, unknown)))
            return False
        self.announce_sources(names, partition, str(env.get("trigger_id")))
        return True

    def _update(self, key: str, fields: dict[str, Any]) -> None:
        def txn(t: Any) -> None:
            t.set(INPUT_VERSIONS, key, {**(t.get(INPUT_VERSIONS, key) or {}), **fields})

        self.store.run_transaction(txn)


__all__ = ["INPUT_VERSIONS", "Dependencies", "InputVersions", "dependencies"]
