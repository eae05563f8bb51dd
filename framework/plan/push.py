"""Push wiring of an ``execution: remote`` target: which subscriptions deliver where.

On a remote target nothing pulls: Pub/Sub pushes every message to the service that handles
it, so the subscriptions are part of the deployment and ``plan`` / ``apply`` own them:

- the subscription of each phase trigger topic consumed by ``phase:P`` -> ``<worker.url>/trigger``;
- the subscription of each fan-out task topic consumed by ``fanout:P`` -> ``<worker.url>/task``;
- a subscription of pipectl's own on the dead-letter topic of each such task subscription,
  ``<dead-letter topic>-pipectl-worker`` -> ``<worker.url>/task-dead-letter``: a task that
  Pub/Sub gives up on (every delivery crashed its instance or went unanswered) reaches the
  worker, which records it failed and finishes its run at once (not in topics.yaml: it is
  part of the deployment, like the ``-pipectl`` subscriptions ``bus dead-letters`` reads);
- with ``orchestrator: {url}`` in the target, the completion subscriptions consumed by
  ``orchestrator:P`` -> ``<url>/projects/<project>/topics/<topic>`` (the orchestrator function
  deployed ``--trigger-http``; functions-framework reads the topic from that path),
  so that no Eventarc subscription exists outside the manifests.

Each push carries an OIDC token of ``worker.service_account`` (audience: the service URL,
what Cloud Run checks), an ack deadline and delivery limit that fit the consumer's declared
timeout (:func:`framework.config.worker.push_delivery`), and a retry policy with backoff so a
failing worker is not hammered. A ``push_endpoint`` written in topics.yaml wins: it is the
operator's explicit choice. Everything here is pure: it rewrites desired resources.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Sequence

from framework.config import Target
from framework.config.worker import TASK_DEAD_LETTER_PATH, TASK_PATH, TRIGGER_PATH, check_remote, consumer_timeout, push_delivery
from framework.manifest.model import Project
from framework.plan.model import Resource

DEAD_TASKS_SUFFIX = "-pipectl-worker"


@dataclass(frozen=True)
class PushRoute:
    """One subscription's push delivery: endpoint, OIDC identity and audience, timing."""

    subscription: str
    endpoint: str
    service_account: str | None
    audience: str | None
    timing: Mapping[str, int]
    topic: str | None = None  # a subscription pipectl adds itself (not in topics.yaml), on this topic

    def attributes(self) -> dict[str, Any]:
        return {"push_endpoint": self.endpoint, "push_service_account": self.service_account,
                "push_audience": self.audience if self.service_account else None, **self.timing}


def push_routes(project: Project, target: Target | None) -> dict[str, PushRoute]:
    """Subscription name -> its push route, for a remote target (empty otherwise)."""
    if target is None or not target.remote:
        return {}
    worker = target.worker_settings()
    check_remote(project, target.name, worker)
    routes: dict[str, PushRoute] = {}
    for topic in project.topics.values():
        for sub in topic.subscriptions:
            kind, _, _name = sub.consumer.partition(":")
            if sub.push_endpoint:
                continue  # declared in topics.yaml: the operator's choice
            if kind == "phase" and topic.contract == "trigger":
                url, account, audience = worker.endpoint(TRIGGER_PATH), worker.service_account, worker.url
            elif kind == "fanout" and topic.contract == "task":
                url, account, audience = worker.endpoint(TASK_PATH), worker.service_account, worker.url
            elif kind == "orchestrator" and target.orchestrator is not None:
                orch = target.orchestrator
                url, account, audience = _topic_path(orch.url, target, topic.name), orch.service_account, orch.audience or orch.url
            else:
                continue
            timeout = consumer_timeout(project, sub.consumer) or 60
            if kind == "orchestrator":
                timeout = 60  # one ledger transaction and a publish
            timing = push_delivery(timeout, sub.ack_deadline_seconds, sub.max_delivery_attempts)
            routes[sub.name] = PushRoute(sub.name, url, account, audience, timing)
            if kind == "fanout" and topic.contract == "task" and sub.dead_letter_topic:
                name = dead_task_subscription(sub.dead_letter_topic)
                # finishing the run (and the rest of its phase) takes as long as a task may
                routes.setdefault(name, PushRoute(name, worker.endpoint(TASK_DEAD_LETTER_PATH), account, audience,
                                                  timing, topic=sub.dead_letter_topic))
    return routes


def dead_task_subscription(dead_letter_topic: str) -> str:
    """pipectl's push subscription that brings dead-lettered fan-out tasks to the worker."""
    return f"{dead_letter_topic}{DEAD_TASKS_SUFFIX}"


def _topic_path(url: str, target: Target, topic: str) -> str:
    """The function's URL with ``/projects/P/topics/T``: functions-framework turns a raw
    Pub/Sub push body into the CloudEvent the orchestrator reads and takes the topic from
    that path (as Eventarc would name it)."""
    project = target.settings.get("project") or target.bus.options.get("project")
    return f"{url.rstrip('/')}/projects/{project}/topics/{topic}" if project else url


def with_push(resources: Sequence[Resource], routes: Mapping[str, PushRoute]) -> list[Resource]:
    """The desired resources with the routed subscriptions pushing; other subscriptions of a
    remote target are declared pull with no retry policy, so a push left on one is drift."""
    if not routes:
        return list(resources)
    out = []
    for r in resources:
        if r.type == "subscription":
            route = routes.get(r.name)
            extra = route.attributes() if route else {
                "push_service_account": None, "push_audience": None,
                "retry_min_backoff_seconds": None, "retry_max_backoff_seconds": None,
            }
            r = Resource(r.type, r.name, {**r.attributes, **extra}, r.meta)
        out.append(r)
    declared = {r.name for r in out if r.type == "subscription"}
    for route in sorted(routes.values(), key=lambda x: x.subscription):
        if route.topic is not None and route.subscription not in declared:  # pipectl's own (no dead-letter policy)
            out.append(Resource("subscription", route.subscription, {
                "topic": route.topic, "dead_letter_topic": None, "filter": None, **route.attributes()}))
    return out


__all__ = ["PushRoute", "push_routes", "with_push", "dead_task_subscription", "DEAD_TASKS_SUFFIX"]
