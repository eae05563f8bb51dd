"""Validation rules: the meaning checks that stop FAILURE-MODES 1-9 before deploy.

Each rule is a small function ``(ctx) -> None`` that appends located diagnostics; all rules
run, then the caller decides. Codes are stable (they appear in JSON/SARIF output and docs).
This module holds the registry (:data:`RULES`, in the order they run, which is the order of
their diagnostics) and the rules of names, references and phases; the rules of other
families live beside it (``table_rules``, ``topic_rules``, ``mapping_rules``,
``data_test_rules``) and are registered here, in place.
"""
from __future__ import annotations

import importlib.util
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from framework.errors import Location
from framework.graph.data_test_rules import check_data_tests
from framework.graph.graph import SOURCE_PREFIX, PipelineGraph
from framework.graph.mapping_rules import check_mapping_dependencies, mapping_cycle_detail
from framework.graph.soundness import guarded, sound_processors
from framework.graph.table_rules import check_columns, check_key_types, check_tables
from framework.graph.topic_rules import check_topics
from framework.manifest.diagnostics import Diagnostics, did_you_mean
from framework.manifest.model import Project, Table


@dataclass
class Context:
    project: Project
    graph: PipelineGraph
    diags: Diagnostics

    def table_of(self, kind: str, name: str) -> Table | None:
        if kind == "source":
            src = self.project.sources.get(name)
            return src.table if src else None
        proc = self.project.processors.get(name)
        return proc.output if proc else None


RULES: list[Callable[[Context], None]] = []


def rule(fn: Callable[[Context], None]) -> Callable[[Context], None]:
    RULES.append(fn)
    return fn


def validate_project(project: Project, diags: Diagnostics, check_sql: bool = True, check_files: bool = True) -> PipelineGraph:
    """Run every rule; returns the graph so callers need not build it twice."""
    ctx = Context(project, PipelineGraph(project), diags)
    where = Location(project.files[0] if project.files else "processors.yaml", 1, 1)
    for fn in RULES:
        if fn is check_transform_files and not check_files:
            continue
        guarded(diags, f"rule {fn.__name__}", where, fn, ctx)
    if check_sql:
        from framework.sql.checks import check_rendered_sql  # lazy: sqlglot is heavy

        # only processors whose references resolve: the rules above report the others
        guarded(diags, "the SQL checks", where, check_rendered_sql, project, diags, only=sound_processors(project))
    return ctx.graph


# ---------------------------------------------------------------- names and references
@rule
def check_phases_and_kinds(ctx: Context) -> None:
    p = ctx.project
    phases = p.phase_names()
    seen: dict[str, object] = {}
    for phase in p.phases:
        if phase.name in seen:
            ctx.diags.error("duplicate-phase", f"duplicate phase '{phase.name}'", phase.location)
        seen[phase.name] = phase
    orders = {}
    for phase in p.phases:
        if phase.order in orders:
            ctx.diags.error("duplicate-phase-order", f"phases '{orders[phase.order]}' and '{phase.name}' share order {phase.order}", phase.location, "give each phase a distinct order")
        orders[phase.order] = phase.name
    for proc in p.processors.values():
        if proc.phase not in seen:
            ctx.diags.error("unknown-phase", f"processor '{proc.name}' is in unknown phase '{proc.phase}'", proc.location, did_you_mean(proc.phase, phases))
        if proc.entity is not None and proc.entity not in p.entity_kinds:
            ctx.diags.error("unknown-entity-kind", f"processor '{proc.name}' uses unknown entity kind '{proc.entity}'", proc.location, did_you_mean(proc.entity, p.entity_kinds) or "declare it under entity_kinds")
    for src in p.sources.values():
        if src.entity is not None and src.entity not in p.entity_kinds:
            ctx.diags.error("unknown-entity-kind", f"source '{src.name}' uses unknown entity kind '{src.entity}'", src.location, did_you_mean(src.entity, p.entity_kinds))
    for m in p.entity_mappings:
        for kind in (m.source, m.target):
            if kind not in p.entity_kinds:
                ctx.diags.error("unknown-entity-kind", f"entity mapping uses unknown entity kind '{kind}'", m.location, did_you_mean(kind, p.entity_kinds))
        table = ctx.table_of("processor", m.via) or ctx.table_of("source", m.via)
        if table is None:
            ctx.diags.error("unknown-mapping-table", f"entity mapping {m.source} -> {m.target} via unknown processor or source '{m.via}'", m.location, did_you_mean(m.via, list(p.processors) + list(p.sources)))
            continue
        for kind, override in ((m.source, m.source_column), (m.target, m.target_column)):
            k = p.entity_kinds.get(kind)
            column = override or (k.key if k else None)
            if column and table.column(column) is None:
                ctx.diags.error("mapping-key-missing", f"entity mapping {m.source} -> {m.target}: table {table.fqn} of '{m.via}' has no column '{column}'", m.location, did_you_mean(column, table.column_names) or f"add '{column}' to its columns or map via another table")
    names = [m.name for m in p.entity_mappings]
    for proc in p.processors.values():
        for inp in proc.inputs:
            if inp.mapping is not None and inp.mapping not in names:
                ctx.diags.error("unknown-mapping", f"processor '{proc.name}' input '{inp.name}' uses unknown entity mapping '{inp.mapping}'", inp.location, did_you_mean(inp.mapping, names))


@rule
def check_inputs(ctx: Context) -> None:
    p = ctx.project
    order = {ph.name: ph.order for ph in p.phases}
    for proc in p.processors.values():
        for inp in proc.inputs:
            if inp.kind == "source":
                if inp.name not in p.sources:
                    ctx.diags.error("unknown-input", f"processor '{proc.name}' reads unknown source '{inp.name}'", inp.location, did_you_mean(inp.name, p.sources) or "declare it under 'sources'")
                continue
            upstream = p.processors.get(inp.name)
            if upstream is None:
                alias_of = p.resolve_processor(inp.name)
                hint = f"'{inp.name}' is an alias: use the processor name '{alias_of.name}'" if alias_of else did_you_mean(inp.name, p.processors)
                ctx.diags.error("unknown-input", f"processor '{proc.name}' has unknown input '{inp.name}'", inp.location, hint)
                continue
            if upstream.name == proc.name:
                continue  # reported as a cycle
            if proc.phase in order and upstream.phase in order and order[upstream.phase] > order[proc.phase]:
                ctx.diags.error(
                    "input-from-later-phase",
                    f"processor '{proc.name}' (phase {proc.phase}) reads '{upstream.name}' from a later phase ({upstream.phase})",
                    inp.location,
                    "move one of them, or read an earlier processor",
                )
            if upstream.output is None:
                ctx.diags.error("input-without-output", f"processor '{proc.name}' reads '{upstream.name}', which has no output table", inp.location, "remove the input or give the upstream an 'output'")


@rule
def check_cycles(ctx: Context) -> None:
    for path in ctx.graph.find_cycles():
        by_mapping = mapping_cycle_detail(ctx, path)
        if by_mapping == "reported":
            continue
        if by_mapping is not None:
            loc, text, fix = by_mapping
            ctx.diags.error("cycle", "cycle: " + " -> ".join(path) + text, loc, fix)
            continue
        first = ctx.project.processors.get(path[0])
        loc = first.location if first else next(iter(ctx.project.processors.values())).location
        ctx.diags.error("cycle", "cycle: " + " -> ".join(path), loc, "break the cycle by removing one of these inputs")


rule(check_mapping_dependencies)  # in mapping_rules.py: a mapping's table is written before its reader


rule(check_tables)  # in table_rules.py: one writer a table, the columns read exist, key types agree
rule(check_columns)
rule(check_key_types)


@rule
def check_aliases(ctx: Context) -> None:
    owners: dict[str, str] = {}
    for proc in ctx.project.processors.values():
        for alias in proc.aliases:
            if alias in ctx.project.processors and alias != proc.name:
                ctx.diags.error("alias-collision", f"alias '{alias}' of processor '{proc.name}' is the name of another processor", proc.location, "remove or rename the alias")
            elif alias in owners and owners[alias] != proc.name:
                ctx.diags.error("alias-collision", f"alias '{alias}' is declared by both '{owners[alias]}' and '{proc.name}'", proc.location, "an alias must identify one processor")
            owners[alias] = proc.name


@rule
def check_transitions(ctx: Context) -> None:
    """Expected/critical lists must name processors of that phase (FM 1, 3, 24)."""
    p = ctx.project
    for phase in p.phases:
        t = phase.transition
        if t is None:
            continue
        expected = set(t.expected)
        for field, names in (("expected", t.expected), ("critical", t.critical)):
            for k, name in enumerate(names):
                loc = t.loc(f"{field}.{k}")
                proc = p.processors.get(name)
                if proc is None:
                    alias_of = p.resolve_processor(name)
                    hint = f"'{name}' is an alias or table of '{alias_of.name}': use the processor name" if alias_of else did_you_mean(name, [x.name for x in p.processors_in(phase.name, enabled_only=False)] or p.processors)
                    ctx.diags.error("unknown-expected", f"phase '{phase.name}' {field} processor '{name}' does not exist", loc, hint)
                elif proc.phase != phase.name:
                    ctx.diags.error("expected-wrong-phase", f"phase '{phase.name}' {field} processor '{name}', which belongs to phase '{proc.phase}'", loc, f"list it in phase '{proc.phase}' instead")
                elif not proc.enabled:
                    ctx.diags.error("disabled-required", f"phase '{phase.name}' {field} processor '{name}', which is disabled: the phase would never complete", loc, f"remove '{name}' from '{field}' or enable it")
        for k, name in enumerate(t.critical):
            proc = p.processors.get(name)
            if name not in expected and proc is not None and proc.enabled:
                ctx.diags.error("critical-not-expected", f"phase '{phase.name}': critical processor '{name}' is not in expected", t.loc(f"critical.{k}"), "add it to expected")
        if not t.expected:
            ctx.diags.error("nothing-expected", f"phase '{phase.name}' transition expects no processor: it could never fire", t.location, "add processors to the phase or list them under 'expected'")
        if t.rule.type == "quorum" and t.rule.quorum is None:
            ctx.diags.error("rule", f"phase '{phase.name}': quorum rule needs 'quorum' (a fraction)", t.rule.location)
        for tier in t.rule.tiers:
            if tier.min_complete > len(t.expected):
                ctx.diags.error("rule", f"phase '{phase.name}': tier needs {tier.min_complete} complete but only {len(t.expected)} expected", tier.location, f"use at most {len(t.expected)}")
        if t.mode == "trigger" and t.target_phase and not t.trigger_topic:
            ctx.diags.error("missing-trigger-topic", f"phase '{phase.name}' triggers '{t.target_phase}' but declares no trigger_topic", t.location, "add trigger_topic or set mode: monitor")
        for gate in t.quality_gates:
            proc = p.processors.get(gate.processor)
            if proc is None:
                ctx.diags.error("unknown-gate-processor", f"quality gate '{gate.name}' checks unknown processor '{gate.processor}'", gate.location, did_you_mean(gate.processor, p.processors))
            elif proc.output is None:
                ctx.diags.error("gate-without-table", f"quality gate '{gate.name}' checks '{gate.processor}', which has no output table", gate.location)


rule(check_data_tests)  # in data_test_rules.py: the rules of processors.yaml `tests:`


@rule
def check_disabled_required(ctx: Context) -> None:
    for proc in ctx.project.processors.values():
        if not proc.enabled:
            continue
        for inp in proc.inputs:
            up = ctx.project.processors.get(inp.name) if inp.kind == "processor" else None
            if up is not None and not up.enabled and inp.critical:
                ctx.diags.error("disabled-required", f"processor '{proc.name}' requires '{up.name}' (critical input), which is disabled", inp.location, f"enable '{up.name}' or make the input non-critical")


@rule
def check_reachability(ctx: Context) -> None:
    p = ctx.project
    if not p.phases:
        return
    first = min(p.phases, key=lambda ph: ph.order).name
    last = max(p.phases, key=lambda ph: ph.order).name
    g = ctx.graph
    required = {n for t in p.transitions() for n in t.expected}
    for proc in p.processors.values():
        if not proc.enabled:
            continue
        if proc.phase != first and not proc.inputs:
            ctx.diags.warning("unreachable", f"processor '{proc.name}' in phase '{proc.phase}' has no inputs: no upstream change ever reaches it", proc.location, "declare its inputs")
        elif proc.inputs and all(
            (inp.kind == "processor" and inp.name in p.processors and not p.processors[inp.name].enabled) for inp in proc.inputs
        ):
            ctx.diags.warning("unreachable", f"processor '{proc.name}' reads only disabled processors", proc.location)
        if proc.phase != last and proc.name in g and not g.succ[proc.name] and proc.name not in required and not _mapping_table(p, proc.name):
            ctx.diags.warning("orphan", f"processor '{proc.name}' feeds nothing and no transition waits for it", proc.location, "use its output downstream, list it as expected, or remove it")


def _mapping_table(p: Project, name: str) -> bool:
    return any(m.via == name for m in p.entity_mappings)


@rule
def check_transform_files(ctx: Context) -> None:
    root = ctx.project.root
    for proc in ctx.project.processors.values():
        t = proc.transform
        if t.sql:
            if not (root / t.sql).is_file():
                ctx.diags.error("missing-transform", f"processor '{proc.name}': transform file '{t.sql}' does not exist", t.location, f"create it; paths are relative to the project root {root}")
        elif t.python:
            module = t.python.split(":", 1)[0]
            if not _module_exists(root, module):
                ctx.diags.error("missing-transform", f"processor '{proc.name}': Python module '{module}' of transform '{t.python}' cannot be found", t.location, "paths are relative to the project root; check the module path")


def _module_exists(root: Path, module: str) -> bool:
    rel = Path(*module.split("."))
    if (root / rel.with_suffix(".py")).is_file() or (root / rel / "__init__.py").is_file():
        return True
    if str(root) not in sys.path:
        # find_spec does not execute user code for top-level packages already importable
        try:
            return importlib.util.find_spec(module) is not None
        except (ImportError, ValueError):
            return False
    return False


rule(check_topics)  # in topic_rules.py: topics declared, produced, consumed; dead letters


__all__ = ["validate_project", "RULES", "SOURCE_PREFIX"]
