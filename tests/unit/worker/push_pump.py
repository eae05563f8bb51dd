"""An in-process stand-in for Pub/Sub push over the embedded bus (unit tests only).

It pulls the subscriptions a deployment would push and POSTs each message, as a Pub/Sub push
body, to the worker app's route (a Starlette TestClient): trigger topics to ``/trigger``,
task topics to ``/task``, pipectl's ``-pipectl-worker`` subscriptions of dead-letter
topics to ``/task-dead-letter``; a 2xx acknowledges, anything else nacks (the bus redelivers, as
Pub/Sub does). Completions go to the orchestrator (the Cloud Function's engine) in process.
The real push path, over HTTP to worker processes, is tests/integration/gcp/test_worker_e2e.py.
"""
from __future__ import annotations

import base64
import json
from typing import Any, Callable


def push_body(msg: Any, subscription: str) -> dict[str, Any]:
    return {"message": {"data": base64.b64encode(msg.data).decode(), "attributes": dict(msg.attributes),
                        "messageId": msg.message_id, "publishTime": "2025-01-01T00:00:00Z"},
            "subscription": f"projects/local/subscriptions/{subscription}", "deliveryAttempt": msg.delivery_attempt}


class PushPump:
    """Routes every deliverable message until the bus is idle."""

    def __init__(self, project: Any, bus: Any, client: Any, orchestrator: Any):
        self.project, self.bus, self.client, self.orchestrator = project, bus, client, orchestrator
        self.routes: list[tuple[str, Callable[[Any, str], bool]]] = []
        fanout_topics = {p.fanout.task_topic for p in project.processors.values() if p.fanout}
        completion_topics = {t.completion_topic for t in project.transitions() if t.completion_topic}
        for topic in project.topics.values():
            if not topic.subscriptions:
                continue
            sub = topic.subscriptions[0].name
            if topic.name in fanout_topics:
                self.routes.append((sub, self._post("/task")))
            elif topic.name in completion_topics:
                self.routes.append((sub, self._orchestrate))
            elif topic.contract == "trigger":
                self.routes.append((sub, self._post("/trigger")))
        # pipectl's push subscriptions on the task topics' dead-letter topics (what apply
        # creates on a remote target), where the test created them on the embedded bus
        for sub in bus.list_subscriptions():
            if sub.name.endswith("-pipectl-worker"):
                self.routes.append((sub.name, self._post("/task-dead-letter")))
        self.replies: list[tuple[str, int, dict]] = []
        # crash(path, msg) -> True: the instance died handling this delivery (no answer: a 502
        # from the load balancer, so the bus redelivers it and counts the attempt)
        self.crash: Callable[[str, Any], bool] = lambda path, msg: False

    def _post(self, path: str) -> Callable[[Any, str], bool]:
        def deliver(msg: Any, sub: str) -> bool:
            if self.crash(path, msg):
                self.replies.append((path, 502, {"outcome": "instance died"}))
                return False
            reply = self.client.post(path, json=push_body(msg, sub))
            self.replies.append((path, reply.status_code, reply.json()))
            return 200 <= reply.status_code < 300

        return deliver

    def _orchestrate(self, msg: Any, sub: str) -> bool:
        self.orchestrator.handle_completion(msg.data)
        return True

    def run(self, max_rounds: int = 10_000) -> int:
        moved = 0
        for _ in range(max_rounds):
            handled = 0
            for sub, deliver in self.routes:
                for msg in self.bus.pull(sub, max_messages=20):
                    handled += 1
                    if deliver(msg, sub):
                        self.bus.ack(sub, [msg.ack_id])
                    else:
                        self.bus.nack(sub, [msg.ack_id])
            moved += handled
            if not handled:
                return moved
        raise AssertionError(f"the bus was not idle after {max_rounds} rounds")

    def outcomes(self, path: str) -> list[str]:
        return [body.get("outcome") for p, _, body in self.replies if p == path]


def task_replies(pump: PushPump) -> list[dict]:
    return [body for p, _, body in pump.replies if p == "/task"]


__all__ = ["PushPump", "push_body", "task_replies", "json"]
