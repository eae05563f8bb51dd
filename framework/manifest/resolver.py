"""Resolve located raw manifest data into the frozen :class:`Project` model.

The resolver fills defaults (a transition expects every enabled processor of its phase
unless told otherwise; an output table lives in its phase's dataset unless qualified) and
reports problems that stop an object from being built. Cross-object meaning (unknown
inputs, cycles, topic wiring) is checked later by ``framework.graph.rules`` so that every
problem is reported in one pass.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from framework.manifest.diagnostics import Diagnostics, did_you_mean
from framework.manifest.loader import LoadedFile
from framework.manifest.model import (
    DATA_TEST_KINDS,
    ChangeDetection,
    Column,
    DataTest,
    EntityKind,
    EntityMapping,
    FanOut,
    Input,
    Phase,
    NO_LOCATION,
    Processor,
    SweepSchedule,
    Project,
    QualityGate,
    Source,
    Subscription,
    Table,
    Tier,
    Topic,
    Transform,
    Transition,
    TriggerRule,
)

_DURATION = re.compile(r"^(\d+(?:\.\d+)?)\s*(s|m|h|d)$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(value: Any) -> int | None:
    """``90`` / ``"90s"`` / ``"5m"`` / ``"1h"`` / ``"1d"`` -> seconds."""
    if value is None:
        return None
    if isinstance(value, bool):
        raise ValueError(f"not a duration: {value!r}")
    if isinstance(value, (int, float)):
        return int(value)
    match = _DURATION.match(str(value).strip())
    if not match:
        raise ValueError(f"not a duration: {value!r} (use e.g. '90s', '5m', '1h')")
    return int(float(match.group(1)) * _UNITS[match.group(2)])


def _columns(raw: list, f: LoadedFile, path: tuple) -> tuple[Column, ...]:
    return tuple(
        Column(c["name"], c["type"], c.get("mode", "NULLABLE"), c.get("description", ""), f.loc(*path, i))
        for i, c in enumerate(raw or [])
    )


def _split_table(ref: str, default_dataset: str | None) -> tuple[str | None, str]:
    if "." in ref:
        dataset, name = ref.split(".", 1)
        return dataset, name
    return default_dataset, ref


def resolve(root: Path, pf: LoadedFile, tf: LoadedFile | None, diags: Diagnostics) -> Project:
    data = pf.data
    partition = data["partition"]
    partition_column = partition["column"]

    kinds = {
        name: EntityKind(name, spec["key"], spec.get("type", "STRING"), spec.get("description", ""), pf.loc("entity_kinds", name))
        for name, spec in (data.get("entity_kinds") or {}).items()
    }

    mappings = tuple(
        EntityMapping(m["from"], m["to"], m["via"], m.get("name") or f"{m['from']}_to_{m['to']}_via_{m['via']}",
                      m.get("from_column"), m.get("to_column"), pf.loc("entity_mappings", i))
        for i, m in enumerate(data.get("entity_mappings") or [])
    )

    sources: dict[str, Source] = {}
    for i, s in enumerate(data.get("sources") or []):
        loc = pf.loc("sources", i)
        dataset, name = _split_table(s["table"], None)
        if dataset is None:
            diags.error("source-table", f"source '{s['name']}' table '{s['table']}' needs a dataset", pf.loc("sources", i, "table"), "write it as 'dataset.table'")
            dataset = "external"
        table = Table(dataset, name, _columns(s["columns"], pf, ("sources", i, "columns")), location=pf.loc("sources", i, "table"))
        if s["name"] in sources:
            diags.error("duplicate-source", f"duplicate source name '{s['name']}'", loc, f"first declared at {sources[s['name']].location}")
            continue
        change = tuple(s["change_columns"]) if s.get("change_columns") else None
        sources[s["name"]] = Source(s["name"], table, s.get("entity"), s.get("description", ""), change, loc)

    phase_specs = sorted(enumerate(data["phases"]), key=lambda item: item[1]["order"])
    phase_datasets = {p["name"]: p.get("dataset") for _, p in phase_specs}

    processors: dict[str, Processor] = {}
    for i, p in enumerate(data.get("processors") or []):
        proc = _processor(p, i, pf, phase_datasets, partition_column, diags)
        if proc.name in processors:
            diags.error(
                "duplicate-processor",
                f"duplicate processor name '{proc.name}'",
                proc.location,
                f"first declared at {processors[proc.name].location}; rename one of them",
            )
            continue
        processors[proc.name] = proc

    phases: list[Phase] = []
    for pos, (i, p) in enumerate(phase_specs):
        target = phase_specs[pos + 1][1]["name"] if pos + 1 < len(phase_specs) else None
        transition = _transition(p, i, pf, target, processors, diags) if p.get("transition") else None
        phases.append(Phase(p["name"], p["order"], p.get("dataset"), p.get("description", ""), transition, pf.loc("phases", i)))

    topics: dict[str, Topic] = {}
    if tf is not None:
        for i, t in enumerate(tf.data.get("topics") or []):
            topic = _topic(t, i, tf, diags)
            if topic.name in topics:
                diags.error("duplicate-topic", f"duplicate topic '{topic.name}'", topic.location, f"first declared at {topics[topic.name].location}")
                continue
            topics[topic.name] = topic

    aliases: dict[str, str] = {}
    tables: dict[str, str] = {}
    ambiguous: set[str] = set()
    for proc in processors.values():
        for alias in proc.aliases:
            aliases.setdefault(alias, proc.name)
        if proc.output is not None:
            tables.setdefault(proc.output.fqn, proc.name)
            if tables.setdefault(proc.output.name, proc.name) != proc.name:
                ambiguous.add(proc.output.name)
    for name in ambiguous:  # a bare table name written in two datasets identifies neither (FM 2)
        del tables[name]

    return Project(
        root=root,
        name=data["project"],
        partition_column=partition_column,
        partition_type=partition.get("type", "DATE"),
        entity_kinds=kinds,
        entity_mappings=mappings,
        sources=sources,
        phases=tuple(phases),
        processors=processors,
        topics=topics,
        files=tuple(x.path for x in (pf, tf) if x is not None),
        sweep=_sweep(data, pf, diags),
        _aliases=aliases,
        _tables=tables,
    )


_CRON_FIELD = re.compile(r"^[0-9A-Za-z*/,\-]+$")


def _sweep(data: dict, pf: LoadedFile, diags: Diagnostics) -> SweepSchedule:
    """``sweep:`` with defaults; the cron expression is checked here (5 fields), not by the
    scheduler at apply time."""
    raw = data.get("sweep") or {}
    loc = pf.loc("sweep") if "sweep" in data else NO_LOCATION
    schedule = str(raw.get("schedule", "* * * * *"))
    fields = schedule.split()
    if len(fields) != 5 or not all(_CRON_FIELD.match(f) for f in fields):
        diags.error("sweep-schedule", f"sweep.schedule {schedule!r} is not a 5-field unix cron expression",
                    pf.loc("sweep", "schedule"), "e.g. '* * * * *' (every minute) or '*/5 * * * *'")
    topic = raw.get("topic") or "pipectl-sweep-" + re.sub(r"[^A-Za-z0-9_-]", "-", str(data.get("project", "project")))
    return SweepSchedule(schedule, str(raw.get("time_zone", "Etc/UTC")), topic, bool(raw.get("enabled", True)), loc)


def _processor(p: dict, i: int, pf: LoadedFile, phase_datasets: dict, partition_column: str, diags: Diagnostics) -> Processor:
    loc = pf.loc("processors", i)
    inputs = []
    for j, raw in enumerate(p.get("inputs") or []):
        iloc = pf.loc("processors", i, "inputs", j)
        if isinstance(raw, str):
            inputs.append(Input(raw, "processor", location=iloc))
        else:
            kind = "source" if "source" in raw else "processor"
            compare = tuple(raw["compare"]) if raw.get("compare") else None
            inputs.append(Input(raw[kind], kind, bool(raw.get("critical", False)), compare, raw.get("mapping"), iloc, raw.get("key")))

    output = None
    if p.get("output"):
        o = p["output"]
        dataset, name = _split_table(o["table"], phase_datasets.get(p["phase"]))
        if dataset is None:
            diags.error(
                "output-dataset",
                f"processor '{p['name']}': output table '{o['table']}' has no dataset and phase '{p['phase']}' declares none",
                pf.loc("processors", i, "output", "table"),
                "write 'dataset.table' or give the phase a 'dataset'",
            )
            dataset = "unknown"
        columns = _columns(o["columns"], pf, ("processors", i, "output", "columns"))
        partition_by = o.get("partition_by") or (partition_column if any(c.name == partition_column for c in columns) else None)
        output = Table(dataset, name, columns, partition_by, tuple(o.get("cluster_by") or ()), pf.loc("processors", i, "output", "table"))

    cd_raw = p.get("change_detection") or {}
    cols = cd_raw.get("columns", "all")
    change = ChangeDetection(None if cols == "all" else tuple(cols), bool(cd_raw.get("enabled", True)), pf.loc("processors", i, "change_detection"))

    t = p["transform"]
    transform = Transform(t.get("sql"), t.get("python"), pf.loc("processors", i, "transform"))

    fanout = None
    if p.get("fanout"):
        f = p["fanout"]
        fanout = FanOut(f["task_topic"], f.get("workers", 4), f.get("max_attempts", 3), pf.loc("processors", i, "fanout"))

    tests = tuple(_data_test(raw, p["name"], k, pf.loc("processors", i, "tests", k)) for k, raw in enumerate(p.get("tests") or []))

    return Processor(
        name=p["name"],
        phase=p["phase"],
        entity=p.get("entity"),
        inputs=tuple(inputs),
        output=output,
        change_detection=change,
        transform=transform,
        aliases=tuple(p.get("aliases") or ()),
        tags=tuple(p.get("tags") or ()),
        enabled=bool(p.get("enabled", True)),
        description=p.get("description", ""),
        fanout=fanout,
        tests=tests,
        timeout_seconds=_duration(p.get("timeout", "10m"), pf, ("processors", i, "timeout"), diags) or 600,
        location=loc,
    )


def _data_test(raw: dict, processor: str, k: int, loc: Any) -> DataTest:
    """One ``tests:`` item (its shape is checked by the JSON Schema: exactly one kind key)."""
    kind = next(key for key in DATA_TEST_KINDS if key in raw)
    spec = raw[kind]
    if isinstance(spec, str):  # `not_null: sensor_id`
        columns, spec = (spec,), {}
    elif isinstance(spec, list):  # `unique: [day, sensor_id]`
        columns, spec = tuple(spec), {}
    else:
        columns = tuple(spec.get("columns") or ([spec["column"]] if spec.get("column") else []))
    default = f"{kind}_" + "_".join(columns) if columns else f"{kind}_{k + 1}"
    return DataTest(
        name=spec.get("name") or default, kind=kind, processor=processor, columns=columns,
        values=tuple(spec.get("values") or ()), to=spec.get("to"), to_column=spec.get("field"),
        sql=spec.get("sql") or spec.get("expression"), severity=spec.get("severity", "error"),
        where=spec.get("where"), location=loc)


def _duration(value: Any, f: LoadedFile, path: tuple, diags: Diagnostics) -> int | None:
    try:
        return parse_duration(value)
    except ValueError as exc:
        diags.error("duration", str(exc), f.loc(*path))
        return None


def _transition(p: dict, i: int, pf: LoadedFile, target: str | None, processors: dict, diags: Diagnostics) -> Transition:
    t = p["transition"]
    base = ("phases", i, "transition")
    if "expected" in t:
        expected = tuple(t["expected"])
    else:
        expected = tuple(name for name, proc in processors.items() if proc.phase == p["name"] and proc.enabled)
    rule_raw = t.get("rule", "all")
    if isinstance(rule_raw, str):
        rule = TriggerRule(rule_raw, location=pf.loc(*base, "rule"))
    else:
        tiers = tuple(
            Tier(_duration(tier["after"], pf, (*base, "rule", "tiers", k, "after"), diags) or 0, tier["min_complete"], pf.loc(*base, "rule", "tiers", k))
            for k, tier in enumerate(rule_raw.get("tiers") or [])
        )
        rule = TriggerRule(rule_raw["type"], rule_raw.get("quorum"), tiers, pf.loc(*base, "rule"))
    gates = tuple(
        QualityGate(g["name"], g["processor"], g.get("min_rows", 1), pf.loc(*base, "quality_gates", k))
        for k, g in enumerate(t.get("quality_gates") or [])
    )
    debounce = _duration(t.get("debounce", 120), pf, (*base, "debounce"), diags)
    return Transition(
        source_phase=p["name"],
        target_phase=target,
        mode=t.get("mode", "trigger"),
        expected=expected,
        critical=tuple(t.get("critical") or ()),
        rule=rule,
        deadline_seconds=_duration(t.get("deadline"), pf, (*base, "deadline"), diags),
        completion_topic=t.get("completion_topic"),
        trigger_topic=t.get("trigger_topic"),
        debounce_seconds=debounce if debounce is not None else 120,
        quality_gates=gates,
        location=pf.loc(*base),
        field_locations=_field_locations(t, pf, base),
    )


def _field_locations(t: dict, pf: LoadedFile, base: tuple) -> dict:
    locs = {}
    for key, value in t.items():
        locs[key] = pf.loc(*base, key)
        if isinstance(value, list):
            for k in range(len(value)):
                locs[f"{key}.{k}"] = pf.loc(*base, key, k)
    return locs


def _topic(t: dict, i: int, tf: LoadedFile, diags: Diagnostics) -> Topic:
    subs = []
    for k, s in enumerate(t.get("subscriptions") or []):
        ack = _duration(s.get("ack_deadline", 60), tf, ("topics", i, "subscriptions", k, "ack_deadline"), diags)
        subs.append(
            Subscription(
                name=s["name"],
                topic=t["name"],
                consumer=s["consumer"],
                ack_deadline_seconds=ack if ack is not None else 60,
                max_delivery_attempts=s.get("max_delivery_attempts", 5),
                dead_letter_topic=s.get("dead_letter_topic", t.get("dead_letter_topic")),
                filter=s.get("filter"),
                push_endpoint=s.get("push_endpoint"),
                location=tf.loc("topics", i, "subscriptions", k),
            )
        )
    return Topic(
        name=t["name"],
        contract=t["contract"],
        producers=tuple(t.get("producers") or ()),
        consumers=tuple(t.get("consumers") or ()),
        subscriptions=tuple(subs),
        dead_letter_topic=t.get("dead_letter_topic"),
        description=t.get("description", ""),
        location=tf.loc("topics", i),
    )


__all__ = ["resolve", "parse_duration", "did_you_mean"]
