"""dbt-compatible node selection, evaluated on the processor graph.

Why a grammar of its own module: every command with ``--select`` (ls, graph, run, verify,
backfill) must read a selector the same way, and a dbt user must be able to type what they
type in dbt. The grammar, as dbt's:

- one ``--select`` value holds terms separated by spaces (union); repeating ``--select``
  is also a union;
- a term holds atoms separated by commas (intersection: ``tag:daily,phase:analytics``);
- an atom is ``[@][N+]METHOD:VALUE[+N]`` or ``[@][N+]NAME[+N]``: ``+`` before takes
  ancestors, after takes descendants, an optional number limits the depth, ``@`` takes the
  descendants and every ancestor of those descendants;
- methods: ``name`` (the default; processor name or alias), ``tag``, ``path`` (transform
  file, glob or directory), ``phase``, ``entity``, ``source`` (processors reading a
  source once ``+`` is added); values may use fnmatch wildcards (``stg_*``, ``?``, ``[ab]``);
- ``--exclude`` takes the same grammar and removes its union from the selection.

A name, method or value that matches nothing raises :class:`SelectionError` with a
did-you-mean hint: a typo must never silently select nothing (or everything).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import TYPE_CHECKING, Any, Callable, Iterable

if TYPE_CHECKING:
    from framework.graph.graph import PipelineGraph

SOURCE_PREFIX = "source:"  # graph node names of sources (re-exported by framework.graph.graph, which imports this module)
METHODS = ("name", "tag", "path", "phase", "entity", "source")
_ATOM = re.compile(r"^(?P<at>@)?(?:(?P<up>\d*)\+)?(?P<spec>[^+@\s]+)(?:\+(?P<down>\d*))?$")
_WILDCARD = re.compile(r"[*?\[]")


class SelectionError(ValueError):
    """A selector names nothing or is malformed; the message carries a did-you-mean hint."""


@dataclass(frozen=True)
class Atom:
    """One parsed atom: method, value and graph operators (None depth = unlimited)."""

    method: str
    value: str
    parents: bool = False
    parents_depth: int | None = None
    children: bool = False
    children_depth: int | None = None
    at: bool = False


def parse_atom(text: str) -> Atom:
    """``2+tag:daily+1`` -> Atom; a malformed atom or unknown method is a SelectionError."""
    m = _ATOM.match(text)
    if not m:
        raise SelectionError(f"malformed selector '{text}': expected [@][N+]NAME[+N] or METHOD:VALUE with +/@ operators")
    spec = m["spec"]
    if ":" in spec:
        method, _, value = spec.partition(":")
        if method not in METHODS:
            raise SelectionError(f"unknown selection method '{method}:' in '{text}'"
                                 + _hint(method, METHODS) + f" (methods: {', '.join(m + ':' for m in METHODS)})")
        if not value:
            raise SelectionError(f"selector '{text}' has no value after '{method}:'")
    else:
        method, value = ("path", spec) if "/" in spec else ("name", spec)
    if m["at"] and m["up"] is not None:
        raise SelectionError(f"selector '{text}' combines '@' with a leading '+'; '@' already includes ancestors")
    return Atom(method, value,
                parents=m["up"] is not None, parents_depth=int(m["up"]) if m["up"] else None,
                children=m["down"] is not None, children_depth=int(m["down"]) if m["down"] else None,
                at=bool(m["at"]))


def parse(expression: str) -> list[list[Atom]]:
    """One ``--select`` value -> terms (union) of atoms (intersection)."""
    terms = []
    for term in expression.split():
        atoms = [parse_atom(a) for a in term.split(",") if a]
        if atoms:
            terms.append(atoms)
    return terms


class Selector:
    """Evaluates parsed selectors against one graph; results are sets of processor names."""

    def __init__(self, graph: PipelineGraph):
        self.graph = graph
        self.project = graph.project

    def resolve(self, selects: Iterable[str], excludes: Iterable[str] = ()) -> set[str]:
        """Union of ``selects`` (all processors when there is none) minus union of ``excludes``."""
        selects = [s for s in selects if s.strip()]
        chosen = self.union(selects) if selects else set(self.graph.processors())
        return chosen - self.union(excludes)

    def union(self, expressions: Iterable[str]) -> set[str]:
        found: set[str] = set()
        for expr in expressions:
            for term in parse(expr):
                result = self.atom(term[0])
                for atom in term[1:]:
                    result &= self.atom(atom)
                found |= result
        return found

    def atom(self, atom: Atom) -> set[str]:
        base = self._base(atom)
        succ, pred, nodes = self.graph.succ, self.graph.pred, self.graph.nodes
        result = set(base)
        if atom.at:
            down: set[str] = set()
            for node in base:
                down |= _within(succ, node, None)
            result |= down
            for node in set(result):
                result |= _within(pred, node, None)
        else:
            for node in base:
                if atom.parents:
                    result |= _within(pred, node, atom.parents_depth)
                if atom.children:
                    result |= _within(succ, node, atom.children_depth)
        return {n for n in result if nodes[n]["kind"] == "processor"}

    # -- methods ---------------------------------------------------------------------
    def _base(self, atom: Atom) -> set[str]:
        handler: Callable[[str], set[str]] = getattr(self, f"_by_{atom.method}")
        return handler(atom.value)

    def _by_name(self, value: str) -> set[str]:
        if not _WILDCARD.search(value):
            proc = self.project.resolve_processor(value)
            if proc is None:
                raise SelectionError(f"no processor '{value}'" + _hint(value, self._names()))
            return {proc.name}
        found = {p.name for p in self.project.processors.values()
                 if fnmatchcase(p.name, value) or any(fnmatchcase(a, value) for a in p.aliases)}
        if not found:
            raise SelectionError(f"no processor matches '{value}'" + _hint(value, self._names()))
        return found

    def _by_tag(self, value: str) -> set[str]:
        tags = sorted({t for p in self.project.processors.values() for t in p.tags})
        matched = _match(value, tags, "tag")
        return {p.name for p in self.project.processors.values() if matched & set(p.tags)}

    def _by_phase(self, value: str) -> set[str]:
        matched = _match(value, self.project.phase_names(), "phase")
        return {p.name for p in self.project.processors.values() if p.phase in matched}

    def _by_entity(self, value: str) -> set[str]:
        matched = _match(value, list(self.project.entity_kinds), "entity kind")
        return {p.name for p in self.project.processors.values() if p.entity in matched}

    def _by_source(self, value: str) -> set[str]:
        return {SOURCE_PREFIX + s for s in _match(value, list(self.project.sources), "source")}

    def _by_path(self, value: str) -> set[str]:
        paths = {p.name: transform_path(p) for p in self.project.processors.values()}
        pattern = value.rstrip("/")
        found = {n for n, path in paths.items()
                 if path and (fnmatchcase(path, pattern) or path.startswith(pattern + "/"))}
        if not found:
            raise SelectionError(f"no processor transform matches path '{value}'"
                                 + _hint(value, sorted(p for p in paths.values() if p)))
        return found

    def _names(self) -> list[str]:
        names = list(self.project.processors)
        return names + [a for p in self.project.processors.values() for a in p.aliases]


def transform_path(proc) -> str | None:
    """The file a processor's transform lives in, relative to the project root: the SQL file,
    or the module file of a Python callable (``pkg.mod:fn`` -> ``pkg/mod.py``)."""
    if proc.transform.sql:
        return proc.transform.sql.lstrip("./")
    if proc.transform.python:
        return proc.transform.python.partition(":")[0].replace(".", "/") + ".py"
    return None


def _within(adjacency: dict[str, dict[str, Any]], start: str, depth: int | None) -> set[str]:
    """Nodes reachable from ``start`` in at most ``depth`` edges (any number when None),
    breadth first over the graph's plain adjacency dicts: no networkx on the run path."""
    seen = {start}
    frontier = [start]
    level = 0
    while frontier and (depth is None or level < depth):
        level += 1
        nxt = []
        for node in frontier:
            for child in adjacency[node]:
                if child not in seen:
                    seen.add(child)
                    nxt.append(child)
        frontier = nxt
    return seen - {start}


def _match(value: str, candidates: Iterable[str], what: str) -> set[str]:
    candidates = list(candidates)
    found = {c for c in candidates if fnmatchcase(c, value)}
    if not found:
        raise SelectionError(f"no {what} '{value}'" + _hint(value, candidates))
    return found


def _hint(value: str, candidates: Iterable[str]) -> str:
    from framework.manifest.diagnostics import did_you_mean

    text = did_you_mean(value, list(candidates))
    return f"; {text}" if text else ""
