"""Per-target name prefixes: one project, several copies in one cloud project.

dbt targets give dev and prod their own schema; pipectl targets give them
``dataset_prefix`` (every dataset pipectl writes: the phases' datasets, the processors'
output tables, its own ``_pipectl`` state tables) and ``topic_prefix`` (every topic and
subscription of topics.yaml, the fan-out task topics, the sweep topic). Sources are read,
not owned, so their tables keep their names: dev reads the same landing data as prod (give
dev its own landing dataset in processors.yaml if it must not).

Applied once, to the resolved model, by whoever opens a target (session, planner,
orchestrator, function): everything downstream (rendered SQL, plan resources, the bus
topology, completions and triggers) sees prefixed names and needs no change of its own.
"""
from __future__ import annotations

import re
from dataclasses import replace

from framework.manifest.model import Phase, Processor, Project, Topic, Transition


def _topic(name: str | None, prefix: str) -> str | None:
    return prefix + name if name else name


def with_prefixes(project: Project, dataset_prefix: str = "", topic_prefix: str = "") -> Project:
    """A copy of ``project`` with its owned datasets and its topics renamed; idempotent per
    prefix (a project already prefixed is returned as is)."""
    dataset_prefix, topic_prefix = dataset_prefix or "", topic_prefix or ""
    if (dataset_prefix, topic_prefix) == (project.dataset_prefix, project.topic_prefix):
        return project
    if project.dataset_prefix or project.topic_prefix:
        raise ValueError(f"project {project.name} already carries prefixes "
                         f"({project.dataset_prefix!r}, {project.topic_prefix!r}); apply them to the unprefixed model")
    dp, tp = dataset_prefix, topic_prefix
    processors: dict[str, Processor] = {}
    for name, proc in project.processors.items():
        output = replace(proc.output, dataset=dp + proc.output.dataset) if proc.output is not None and dp else proc.output
        fanout = replace(proc.fanout, task_topic=tp + proc.fanout.task_topic) if proc.fanout is not None and tp else proc.fanout
        processors[name] = replace(proc, output=output, fanout=fanout)
    phases: list[Phase] = []
    for phase in project.phases:
        t: Transition | None = phase.transition
        if t is not None and tp:
            t = replace(t, completion_topic=_topic(t.completion_topic, tp), trigger_topic=_topic(t.trigger_topic, tp))
        phases.append(replace(phase, dataset=dp + phase.dataset if phase.dataset and dp else phase.dataset, transition=t))
    topics: dict[str, Topic] = {}
    for topic in project.topics.values():
        subs = tuple(replace(sub, name=tp + sub.name, topic=tp + sub.topic,
                             dead_letter_topic=_topic(sub.dead_letter_topic, tp)) for sub in topic.subscriptions)
        renamed = replace(topic, name=tp + topic.name, subscriptions=subs, dead_letter_topic=_topic(topic.dead_letter_topic, tp))
        topics[renamed.name] = renamed
    tables: dict[str, str] = {}
    for name, proc in processors.items():
        if proc.output is not None:
            tables.setdefault(proc.output.fqn, name)
    tables.update({k: v for k, v in project._tables.items() if "." not in k})  # bare table names stay unambiguous
    sweep = replace(project.sweep, topic=tp + project.sweep.topic) if tp and project.sweep.topic else project.sweep
    return replace(project, processors=processors, phases=tuple(phases), topics=topics, sweep=sweep,
                   dataset_prefix=dp, topic_prefix=tp, _tables=tables)


SERVICE_NAME_MAX = 63  # Cloud Functions (gen2) and Cloud Run service names
SERVICE_NAME = re.compile(r"^[a-z]([a-z0-9-]*[a-z0-9])?$")


def service_prefix(dataset_prefix: str = "", topic_prefix: str = "") -> str:
    """What a target puts in front of its Cloud Function and Cloud Run service names: the
    topic prefix (else the dataset prefix) lowercased, other characters than letters, digits
    and hyphens made hyphens, ending in one hyphen (``dev_`` and ``dev-`` both give ``dev-``).
    Functions and services live in one namespace per region: without it dev's deploy would
    replace prod's function of the same phase."""
    raw = re.sub(r"[^a-z0-9-]+", "-", (topic_prefix or dataset_prefix or "").lower()).strip("-")
    return f"{raw}-" if raw else ""


def service_name(project: Project, *parts: str) -> str:
    """A Cloud Functions / Cloud Run name of this (prefixed) project: the target's
    :func:`service_prefix` then ``parts`` joined by hyphens, lowercased. Raises ValueError
    instead of truncating (a cut name could collide with another phase's)."""
    body = re.sub(r"[^a-z0-9-]+", "-", "-".join(parts).lower()).strip("-")
    name = service_prefix(project.dataset_prefix, project.topic_prefix) + body
    if len(name) > SERVICE_NAME_MAX or not SERVICE_NAME.match(name):
        raise ValueError(f"service name '{name}' is not a valid Cloud Functions/Cloud Run name "
                         f"(lowercase letters, digits, hyphens; starts with a letter; at most {SERVICE_NAME_MAX} characters)")
    return name


def owner_label(project: Project) -> str:
    """Whose cloud resources these are, for labels and ownership tags: the project's name,
    with the target's prefix in front when it has one (dev's topics are not prod's)."""
    prefix = project.topic_prefix or project.dataset_prefix
    return f"{prefix}{project.name}" if prefix else project.name


__all__ = ["SERVICE_NAME_MAX", "owner_label", "service_name", "service_prefix", "with_prefixes"]
