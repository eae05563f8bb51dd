"""Validation rules of the bus topology (topics.yaml), registered by :mod:`framework.graph.rules`.

Apart from the processor rules because they read another manifest: every topic a phase or
fan-out names is declared, produced and consumed (FM 4, 18), contracts match their use, each
consumer has a subscription with a dead-letter topic, subscription filters parse. Each takes
the rules' :class:`~framework.graph.rules.Context`.
"""
from __future__ import annotations

from typing import Any

from framework.manifest.diagnostics import did_you_mean


def check_topics(ctx: Any) -> None:
    """Topics must be declared, produced and consumed (FM 4, 18); DLQs must exist."""
    p = ctx.project
    topics = p.topics

    def need(name: str | None, what: str, loc) -> None:
        if name and name not in topics:
            ctx.diags.error("undeclared-topic", f"{what} references undeclared topic '{name}'", loc, did_you_mean(name, topics) or "declare it in topics.yaml")

    for phase in p.phases:
        t = phase.transition
        if t is None:
            continue
        need(t.completion_topic, f"phase '{phase.name}' completion_topic", t.loc("completion_topic"))
        need(t.trigger_topic, f"phase '{phase.name}' trigger_topic", t.loc("trigger_topic"))
        ct = topics.get(t.completion_topic or "")
        if ct is not None:
            if ct.contract != "completion":
                ctx.diags.error("topic-contract", f"phase '{phase.name}' completion_topic '{ct.name}' has contract '{ct.contract}', expected 'completion'", t.location)
            if f"orchestrator:{phase.name}" not in ct.consumers:
                ctx.diags.error("topic-wiring", f"completion topic '{ct.name}' is not consumed by orchestrator:{phase.name}", ct.location, f"add 'orchestrator:{phase.name}' to its consumers")
        tt = topics.get(t.trigger_topic or "")
        if tt is not None:
            if tt.contract != "trigger":
                ctx.diags.error("topic-contract", f"phase '{phase.name}' trigger_topic '{tt.name}' has contract '{tt.contract}', expected 'trigger'", t.location)
            if f"orchestrator:{phase.name}" not in tt.producers:
                ctx.diags.error("topic-wiring", f"trigger topic '{tt.name}' is not produced by orchestrator:{phase.name}", tt.location, f"add 'orchestrator:{phase.name}' to its producers")
            if t.target_phase and f"phase:{t.target_phase}" not in tt.consumers:
                ctx.diags.error("topic-wiring", f"trigger topic '{tt.name}' is not consumed by phase:{t.target_phase}", tt.location, f"add 'phase:{t.target_phase}' to its consumers")
    for proc in p.processors.values():
        if proc.fanout:
            need(proc.fanout.task_topic, f"processor '{proc.name}' fanout", proc.fanout.location)
            task_topic = topics.get(proc.fanout.task_topic)
            for sub in task_topic.subscriptions if task_topic else ():
                if proc.fanout.max_attempts > sub.max_delivery_attempts:
                    ctx.diags.warning(
                        "fanout-attempts",
                        f"processor '{proc.name}': fanout.max_attempts {proc.fanout.max_attempts} exceeds subscription "
                        f"'{sub.name}' max_delivery_attempts {sub.max_delivery_attempts}; the bus dead-letters a task first",
                        proc.fanout.location, f"set fanout.max_attempts to at most {sub.max_delivery_attempts} or raise the subscription's")

    dead_letter_targets = set()
    for topic in topics.values():
        for ref in topic.producers + topic.consumers:
            _check_ref(ctx, topic, ref)
        need(topic.dead_letter_topic, f"topic '{topic.name}'", topic.location)
        if topic.dead_letter_topic:
            dead_letter_targets.add(topic.dead_letter_topic)
        if topic.contract != "dead_letter" and not topic.producers:
            ctx.diags.error("topic-no-producer", f"topic '{topic.name}' has no producer", topic.location, "list who publishes to it under 'producers', or delete it")
        if not topic.consumers and not topic.subscriptions:
            ctx.diags.error("topic-no-consumer", f"topic '{topic.name}' has no consumer: messages would pile up unread", topic.location, "add a consumer and a subscription, or delete it")
        consumers = set(topic.consumers)
        for sub in topic.subscriptions:
            if not topic.producers and topic.contract != "dead_letter":
                ctx.diags.error("subscription-no-publisher", f"subscription '{sub.name}' is on topic '{topic.name}', which nothing publishes", sub.location)
            if sub.consumer not in consumers:
                ctx.diags.error("subscription-consumer", f"subscription '{sub.name}' consumer '{sub.consumer}' is not a declared consumer of '{topic.name}'", sub.location, did_you_mean(sub.consumer, consumers))
            if topic.contract != "dead_letter":
                if not sub.dead_letter_topic:
                    ctx.diags.error("dead-letter-missing", f"subscription '{sub.name}' has no dead-letter topic: poison messages would retry forever", sub.location, "set dead_letter_topic on the subscription or its topic")
                else:
                    need(sub.dead_letter_topic, f"subscription '{sub.name}' dead_letter_topic", sub.location)
                    dead_letter_targets.add(sub.dead_letter_topic)
                    dlq = topics.get(sub.dead_letter_topic)
                    if dlq is not None and dlq.contract != "dead_letter":
                        ctx.diags.error("topic-contract", f"subscription '{sub.name}' dead-letters into '{dlq.name}', whose contract is '{dlq.contract}'", sub.location, "dead-letter topics use contract: dead_letter")
        for consumer in topic.consumers:
            if topic.contract != "dead_letter" and not any(s.consumer == consumer for s in topic.subscriptions) and not consumer.startswith("external:"):
                ctx.diags.error("missing-subscription", f"topic '{topic.name}' consumer '{consumer}' has no subscription", topic.location, "add a subscription for it")
    _check_filters(ctx)
    for topic in topics.values():
        if topic.contract == "dead_letter" and topic.name not in dead_letter_targets:
            ctx.diags.warning("unused-dead-letter", f"dead-letter topic '{topic.name}' is not used by any subscription", topic.location)


def _check_filters(ctx: Any) -> None:
    """A subscription filter that does not parse would be rejected at deploy time (Pub/Sub)
    or match nothing; report it now, with the position of the problem."""
    from framework.manifest.bus_filter import compile_filter
    from framework.errors import BackendError

    for topic in ctx.project.topics.values():
        for sub in topic.subscriptions:
            if sub.filter:
                try:
                    compile_filter(sub.filter)
                except BackendError as exc:
                    ctx.diags.error("subscription-filter", f"subscription '{sub.name}': {exc.message}", sub.location, exc.hint or "see docs/backends.md for the filter syntax")


def _check_ref(ctx: Any, topic, ref: str) -> None:
    p = ctx.project
    kind, _, name = ref.partition(":")
    if kind == "processor" or kind == "fanout":
        if p.resolve_processor(name) is None:
            ctx.diags.error("unknown-reference", f"topic '{topic.name}' names unknown processor '{name}' in '{ref}'", topic.location, did_you_mean(name, p.processors))
    elif kind in ("phase", "orchestrator"):
        names = p.phase_names()
        if name not in names:
            ctx.diags.error("unknown-reference", f"topic '{topic.name}' names unknown phase '{name}' in '{ref}'", topic.location, did_you_mean(name, names))
        elif kind == "orchestrator" and p.phase(name).transition is None:
            ctx.diags.error("unknown-reference", f"topic '{topic.name}' names orchestrator:{name}, but phase '{name}' declares no transition", topic.location)
