"""Bus on Google Cloud Pub/Sub (google-cloud-pubsub); the emulator is honoured through
``PUBSUB_EMULATOR_HOST``, which the client library reads itself.

Names in the protocol are short (``nba-phase2-raw-complete``); this module owns the mapping
to ``projects/{project}/topics/{name}``. Semantics match the local bus where Pub/Sub allows:

* ``create_topic`` / ``create_subscription`` are idempotent; a subscription that exists on
  another topic is an error (as on the local bus).
* ``max_delivery_attempts`` is enforced by Pub/Sub only through a dead-letter policy, whose
  range is 5..100. Without a dead-letter topic the value is kept in a subscription label so
  ``list_subscriptions`` (and the plan) read back what the manifest declared.
* ``delivery_attempt`` is reported by Pub/Sub only on subscriptions with a dead-letter
  policy; elsewhere it is reported as 1.
* ``nack`` is ``modify_ack_deadline(0)``; ``pull`` returns what is available now (on the
  service: waits up to ``pull_wait`` seconds for a first message).
* A subscription filter cannot change on Pub/Sub: ``update_subscription`` refuses with the fix.
* Push: :func:`parse_push_body` turns the JSON a push subscription POSTs into a
  :class:`ReceivedMessage`.
"""
from __future__ import annotations

import base64
import contextlib
import json
import os
import warnings
from datetime import datetime
from typing import Any, Callable, Iterator, Mapping, Sequence

from framework.manifest.bus_filter import compile_filter
from framework.backends.gcp_common import anonymous_credentials_if_emulated, bounded_retry, require, sanitize_labels
from framework.backends.protocols import ReceivedMessage, SubscriptionConfig, TopicConfig
from framework.errors import BackendError

MAX_ATTEMPTS_LABEL = "pipectl-max-delivery-attempts"
_DEFAULT_MAX_ATTEMPTS = SubscriptionConfig("", "").max_delivery_attempts


def _short(path: str) -> str:
    return path.rsplit("/", 1)[-1]


def _timestamp(value: Any) -> float:
    if isinstance(value, datetime):
        return value.timestamp()
    if isinstance(value, str) and value:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    return 0.0


def _push_config(config: SubscriptionConfig) -> dict[str, Any]:
    """Push (endpoint, OIDC token Pub/Sub signs each request with) or ``{}`` for pull."""
    if not config.push_endpoint:
        return {}
    out: dict[str, Any] = {"push_endpoint": config.push_endpoint}
    if config.push_service_account:
        out["oidc_token"] = {"service_account_email": config.push_service_account,
                             "audience": config.push_audience or ""}
    return out


def _backoff(config: SubscriptionConfig) -> tuple[int | None, int | None]:
    if config.retry_min_backoff_seconds is None and config.retry_max_backoff_seconds is None:
        return None, None
    return int(config.retry_min_backoff_seconds or 10), int(config.retry_max_backoff_seconds or 600)


def _seconds(duration: Any) -> int | None:
    """A protobuf Duration (or the client's timedelta) in whole seconds."""
    if duration is None:
        return None
    if hasattr(duration, "total_seconds"):
        return int(duration.total_seconds())
    return int(getattr(duration, "seconds", 0))


def parse_push_body(body: bytes | str | Mapping[str, Any]) -> ReceivedMessage:
    """Decode a Pub/Sub push request body (``{"message": {...}, "subscription": ...}``).

    Push has no ack id: the HTTP status acks (2xx) or nacks (anything else)."""
    try:
        payload = json.loads(body) if isinstance(body, (bytes, str)) else dict(body)
        message = payload["message"]
    except (ValueError, KeyError, TypeError) as exc:
        raise BackendError("not a Pub/Sub push body: expected JSON with a 'message' object",
                           hint="point the push subscription at this endpoint without payload unwrapping") from exc
    data = base64.b64decode(message.get("data", "") or "")
    return ReceivedMessage(
        ack_id="",
        message_id=str(message.get("messageId") or message.get("message_id") or ""),
        data=data,
        attributes=dict(message.get("attributes") or {}),
        delivery_attempt=int(payload.get("deliveryAttempt") or 1),
        publish_time=_timestamp(message.get("publishTime") or message.get("publish_time")),
    )


class PubSubBus:
    """Bus protocol on Pub/Sub. ``timeout`` bounds every RPC (seconds)."""

    supports_push = True

    def __init__(self, project: str, credentials: Any = None, timeout: float = 30.0, pull_wait: float = 2.0,
                 scheduler_region: str = "us-central1", scheduler_endpoint: str | None = None):
        pubsub = require("google.cloud.pubsub_v1")
        self.project = project
        self.scheduler_region, self.scheduler_endpoint = scheduler_region, scheduler_endpoint
        self._scheduler: Any = None
        self._credentials = credentials
        self.timeout = timeout
        self.pull_wait = pull_wait
        self.emulated = bool(os.environ.get("PUBSUB_EMULATOR_HOST"))
        credentials = anonymous_credentials_if_emulated("PUBSUB_EMULATOR_HOST", credentials)
        self._publisher = pubsub.PublisherClient(credentials=credentials)
        self._subscriber = pubsub.SubscriberClient(credentials=credentials)
        self._exc = require("google.api_core.exceptions")
        self._retry = bounded_retry(timeout)  # the SDK's default retries outlast the timeout
        self._errors = (self._exc.GoogleAPICallError, self._exc.RetryError)
        self._filters: dict[str, Callable[[Mapping[str, str]], bool]] = {}

    def scheduler(self) -> Any:
        """The Cloud Scheduler jobs that publish to this bus (the sweep's tick), for plan/apply.
        None on the Pub/Sub emulator unless ``scheduler_endpoint`` names a stand-in: Cloud
        Scheduler has no emulator, and an emulated project must never reach the real service."""
        if self.emulated and not self.scheduler_endpoint:
            return None
        if self._scheduler is None:
            from framework.backends.scheduler import CloudScheduler

            self._scheduler = CloudScheduler(self.project, self.scheduler_region, self.scheduler_endpoint,
                                             None if self.emulated else self._credentials, timeout=self.timeout)
        return self._scheduler

    # ----------------------------------------------------------------- helpers
    def topic_path(self, name: str) -> str:
        return name if name.startswith("projects/") else f"projects/{self.project}/topics/{name}"

    def subscription_path(self, name: str) -> str:
        return name if name.startswith("projects/") else f"projects/{self.project}/subscriptions/{name}"

    def _call(self, fn: Callable[[], Any], what: str, hint: str | None = None) -> Any:
        """Run one RPC; translate API errors into BackendError naming the topic/subscription."""
        try:
            return fn()
        except self._errors as exc:
            raise BackendError(f"Pub/Sub project {self.project}: {what} failed: {getattr(exc, 'message', exc)}",
                               hint=hint or "check PUBSUB_EMULATOR_HOST / credentials and the resource names") from exc

    # ----------------------------------------------------------------- topics
    def create_topic(self, config: TopicConfig) -> None:
        labels = sanitize_labels(config.labels)
        path = self.topic_path(config.name)
        try:
            self._publisher.create_topic(request={"name": path, "labels": labels}, retry=self._retry, timeout=self.timeout)
            return
        except self._exc.AlreadyExists:
            pass
        except self._errors as exc:
            raise BackendError(f"Pub/Sub: cannot create topic {config.name}: {getattr(exc, 'message', exc)}",
                               hint="check PUBSUB_EMULATOR_HOST / credentials and connectivity"
                               if isinstance(exc, self._exc.RetryError)
                               else "topic names: 3-255 chars, letters, digits, - _ . ~ + %, starting with a letter") from exc
        current = self._call(lambda: self._publisher.get_topic(request={"topic": path}, retry=self._retry, timeout=self.timeout), f"read topic {config.name}")
        if dict(current.labels) != labels:
            self._call(lambda: self._publisher.update_topic(
                request={"topic": {"name": path, "labels": labels}, "update_mask": {"paths": ["labels"]}}, retry=self._retry, timeout=self.timeout),
                f"update labels of topic {config.name}", hint="the Pub/Sub emulator cannot update topic labels; recreate the topic")

    def delete_topic(self, name: str) -> None:
        try:
            self._publisher.delete_topic(request={"topic": self.topic_path(name)}, retry=self._retry, timeout=self.timeout)
        except self._exc.NotFound:
            return
        except self._errors as exc:
            raise BackendError(f"Pub/Sub: cannot delete topic {name}: {getattr(exc, 'message', exc)}") from exc

    def list_topics(self) -> list[TopicConfig]:
        topics = self._call(lambda: list(self._publisher.list_topics(request={"project": f"projects/{self.project}"}, retry=self._retry, timeout=self.timeout)),
                            "list topics")
        return sorted((TopicConfig(_short(t.name), dict(t.labels)) for t in topics), key=lambda t: t.name)

    # ----------------------------------------------------------------- subscriptions
    def _subscription_body(self, config: SubscriptionConfig) -> dict[str, Any]:
        """The Subscription resource; a field left out but named in an update mask is cleared."""
        body: dict[str, Any] = {
            "name": self.subscription_path(config.name),
            "topic": self.topic_path(config.topic),
            "ack_deadline_seconds": int(config.ack_deadline_seconds),
            "push_config": _push_config(config),
            "labels": {MAX_ATTEMPTS_LABEL: str(int(config.max_delivery_attempts))},
        }
        if config.retry_min_backoff_seconds is not None or config.retry_max_backoff_seconds is not None:
            body["retry_policy"] = {"minimum_backoff": {"seconds": int(config.retry_min_backoff_seconds or 10)},
                                    "maximum_backoff": {"seconds": int(config.retry_max_backoff_seconds or 600)}}
        if config.dead_letter_topic:
            body["dead_letter_policy"] = {"dead_letter_topic": self.topic_path(config.dead_letter_topic),
                                          "max_delivery_attempts": int(config.max_delivery_attempts)}
        if config.filter:
            body["filter"] = config.filter
        return body

    def _check(self, config: SubscriptionConfig) -> None:
        if not 10 <= config.ack_deadline_seconds <= 600:
            raise BackendError(f"subscription {config.name}: ack deadline {config.ack_deadline_seconds}s is outside Pub/Sub's 10..600 s",
                               hint="set ack_deadline_seconds between 10 and 600 in topics.yaml")
        if config.dead_letter_topic and not 5 <= config.max_delivery_attempts <= 100:
            raise BackendError(f"subscription {config.name}: max_delivery_attempts {config.max_delivery_attempts} is outside "
                               f"Pub/Sub's 5..100 for a dead-letter policy", hint="set max_delivery_attempts between 5 and 100")

    def _get_subscription(self, name: str) -> Any | None:
        try:
            return self._subscriber.get_subscription(request={"subscription": self.subscription_path(name)}, retry=self._retry, timeout=self.timeout)
        except self._exc.NotFound:
            return None
        except self._errors as exc:
            raise BackendError(f"Pub/Sub: cannot read subscription {name}: {getattr(exc, 'message', exc)}") from exc

    def create_subscription(self, config: SubscriptionConfig) -> None:
        """Create a subscription (only messages published from now on reach it). Existing on
        the same topic: no-op; on another topic: error."""
        self._check(config)
        compile_filter(config.filter)  # a bad filter fails here, located, as on the local bus
        self._filters.pop(config.name, None)
        try:
            self._subscriber.create_subscription(request=self._subscription_body(config), retry=self._retry, timeout=self.timeout)
            return
        except self._exc.AlreadyExists:
            existing = self._get_subscription(config.name)
            if existing is not None and _short(existing.topic) != config.topic:
                raise BackendError(f"subscription {config.name} already exists on topic {_short(existing.topic)}, not {config.topic}",
                                   hint="delete it first or choose another subscription name") from None
        except self._exc.NotFound as exc:
            raise BackendError(f"cannot create subscription {config.name}: topic {config.topic} "
                               f"(or dead-letter topic {config.dead_letter_topic}) does not exist",
                               hint="create the topics first (pipectl apply)") from exc
        except self._errors as exc:
            raise BackendError(f"Pub/Sub: cannot create subscription {config.name}: {getattr(exc, 'message', exc)}",
                               hint="check the filter syntax, push endpoint URL and names") from exc

    def update_subscription(self, config: SubscriptionConfig) -> None:
        """Change ack deadline, max attempts, dead-letter topic, push endpoint and its OIDC
        identity (push <-> pull included), or the retry policy, in place."""
        self._check(config)
        existing = self._get_subscription(config.name)
        if existing is None:
            raise BackendError(f"subscription {config.name} does not exist", hint="create it first (pipectl apply)")
        if _short(existing.topic) != config.topic:
            raise BackendError(f"subscription {config.name} is attached to topic {_short(existing.topic)}; its topic cannot change to {config.topic}",
                               hint="delete and recreate the subscription")
        if (existing.filter or None) != (config.filter or None):
            raise BackendError(f"subscription {config.name}: Pub/Sub cannot change a subscription's filter",
                               hint="delete and recreate the subscription (pipectl plan shows it as a replace)")
        body = self._subscription_body(config)
        body.pop("filter", None)
        labels = dict(existing.labels)
        if not config.dead_letter_topic:  # with a dead-letter policy the policy holds the attempts
            labels.update(body["labels"])
        body["labels"] = labels
        current = self._config_of(existing)
        paths = [path for path, changed in (
            ("ack_deadline_seconds", current.ack_deadline_seconds != config.ack_deadline_seconds),
            ("push_config", (current.push_endpoint, current.push_service_account, current.push_audience)
             != (config.push_endpoint or None, (config.push_service_account or None) if config.push_endpoint else None,
                 (config.push_audience or None) if config.push_endpoint and config.push_service_account else None)),
            ("retry_policy", (current.retry_min_backoff_seconds, current.retry_max_backoff_seconds)
             != _backoff(config)),
            ("dead_letter_policy", (current.dead_letter_topic, current.max_delivery_attempts if current.dead_letter_topic else None)
             != (config.dead_letter_topic, config.max_delivery_attempts if config.dead_letter_topic else None)),
            ("labels", dict(existing.labels) != labels),
        ) if changed]
        if not paths:
            return
        self._call(lambda: self._subscriber.update_subscription(
            request={"subscription": body, "update_mask": {"paths": paths}}, retry=self._retry, timeout=self.timeout),
            f"update subscription {config.name} ({', '.join(paths)})",
            hint="the Pub/Sub emulator cannot update labels (max_delivery_attempts without a dead-letter topic)"
            if "labels" in paths else None)

    def delete_subscription(self, name: str) -> None:
        self._filters.pop(name, None)
        try:
            self._subscriber.delete_subscription(request={"subscription": self.subscription_path(name)}, retry=self._retry, timeout=self.timeout)
        except self._exc.NotFound:
            return
        except self._errors as exc:
            raise BackendError(f"Pub/Sub: cannot delete subscription {name}: {getattr(exc, 'message', exc)}") from exc

    def _config_of(self, sub: Any) -> SubscriptionConfig:
        dlp = sub.dead_letter_policy
        dead_letter = _short(dlp.dead_letter_topic) if dlp and dlp.dead_letter_topic else None
        if dead_letter:
            attempts = int(dlp.max_delivery_attempts)
        else:
            attempts = int(dict(sub.labels).get(MAX_ATTEMPTS_LABEL, _DEFAULT_MAX_ATTEMPTS))
        push = sub.push_config
        oidc = push.oidc_token if push and push.push_endpoint and "oidc_token" in push else None
        retry = sub.retry_policy if "retry_policy" in sub else None
        return SubscriptionConfig(
            name=_short(sub.name), topic=_short(sub.topic), ack_deadline_seconds=int(sub.ack_deadline_seconds),
            max_delivery_attempts=attempts, dead_letter_topic=dead_letter, filter=sub.filter or None,
            push_endpoint=(push.push_endpoint or None) if push else None,
            push_service_account=(oidc.service_account_email or None) if oidc else None,
            push_audience=(oidc.audience or None) if oidc else None,
            retry_min_backoff_seconds=_seconds(retry.minimum_backoff) if retry else None,
            retry_max_backoff_seconds=_seconds(retry.maximum_backoff) if retry else None)

    def get_subscription(self, name: str) -> SubscriptionConfig | None:
        sub = self._get_subscription(name)
        return None if sub is None else self._config_of(sub)

    def list_subscriptions(self) -> list[SubscriptionConfig]:
        subs = self._call(lambda: list(self._subscriber.list_subscriptions(request={"project": f"projects/{self.project}"},
                                                                            retry=self._retry, timeout=self.timeout)), "list subscriptions")
        return sorted((self._config_of(s) for s in subs), key=lambda c: c.name)

    # ----------------------------------------------------------------- messages
    def publish(self, topic: str, data: bytes, attributes: Mapping[str, str] | None = None) -> str:
        attrs = dict(attributes or {})
        if not isinstance(data, (bytes, bytearray)):
            raise BackendError(f"publish to {topic}: data must be bytes, got {type(data).__name__}",
                               hint="encode the payload, e.g. json.dumps(...).encode()")
        bad = [k for k, v in attrs.items() if not isinstance(k, str) or not isinstance(v, str)]
        if bad:
            raise BackendError(f"publish to {topic}: attribute values must be strings (Pub/Sub rule); not strings: {', '.join(map(str, bad))}",
                               hint="convert attribute values with str()")
        with self._publish_errors(topic):
            future = self._publisher.publish(self.topic_path(topic), bytes(data), **attrs)
            return str(future.result(timeout=self.timeout))

    def publish_many(self, topic: str, messages: Sequence[tuple[bytes, Mapping[str, str] | None]]) -> list[str]:
        """Publish several messages, waiting once for all their ids: the client batches them
        (one RPC per batch instead of a round trip per message; the fan-out's task messages)."""
        futures = []
        with self._publish_errors(topic):
            for data, attributes in messages:
                attrs = dict(attributes or {})
                futures.append(self._publisher.publish(self.topic_path(topic), bytes(data), **attrs))
            return [str(f.result(timeout=self.timeout)) for f in futures]

    @contextlib.contextmanager
    def _publish_errors(self, topic: str) -> Iterator[None]:
        """Translate the SDK's publish errors into BackendErrors naming the topic and the fix
        (one place for publish and publish_many)."""
        try:
            yield
        except self._exc.NotFound as exc:
            raise BackendError(f"cannot publish: topic {topic} does not exist in project {self.project}",
                               hint="declare it in topics.yaml and run `pipectl apply`") from exc
        except self._errors as exc:
            raise BackendError(f"publish to {topic} failed: {getattr(exc, 'message', exc)}") from exc
        except TimeoutError as exc:
            raise BackendError(f"publish to {topic} timed out after {self.timeout}s", hint="check connectivity to Pub/Sub") from exc

    def pull(self, subscription: str, max_messages: int = 10) -> list[ReceivedMessage]:
        """Lease up to ``max_messages`` messages available now (empty list if none)."""
        if max_messages <= 0:
            return []
        # The emulator answers at once with return_immediately (deprecated, but exactly "what is
        # available now"); the service may return nothing that way, so there a pull waits up
        # to ``pull_wait`` seconds for the first message instead.
        request = {"subscription": self.subscription_path(subscription), "max_messages": int(max_messages),
                   "return_immediately": self.emulated}
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)
                response = self._subscriber.pull(request=request, timeout=self.timeout if self.emulated else self.pull_wait,
                                                 retry=None)
        except self._exc.DeadlineExceeded:
            return []
        except self._exc.NotFound as exc:
            raise BackendError(f"subscription {subscription} does not exist in project {self.project}",
                               hint="declare it in topics.yaml and run `pipectl apply`") from exc
        except self._errors as exc:
            raise BackendError(f"pull from {subscription} failed: {getattr(exc, 'message', exc)}") from exc
        messages = [ReceivedMessage(ack_id=r.ack_id, message_id=r.message.message_id, data=bytes(r.message.data),
                                    attributes=dict(r.message.attributes), delivery_attempt=max(1, int(r.delivery_attempt)),
                                    publish_time=_timestamp(r.message.publish_time))
                    for r in response.received_messages]
        return self._apply_filter(subscription, messages)

    def _apply_filter(self, subscription: str, messages: list[ReceivedMessage]) -> list[ReceivedMessage]:
        """Acknowledge and drop messages the subscription's filter excludes.

        The service never delivers them (so this is a no-op there); the emulator ignores
        filters, and the same manifest must behave the same on both."""
        if not messages:
            return messages
        if subscription not in self._filters:
            config = self.get_subscription(subscription)
            self._filters[subscription] = compile_filter(config.filter if config else None)
        keep = self._filters[subscription]
        dropped = [m.ack_id for m in messages if not keep(m.attributes)]
        if dropped:
            self.ack(subscription, dropped)
        return [m for m in messages if keep(m.attributes)]

    def ack(self, subscription: str, ack_ids: Sequence[str]) -> None:
        if ack_ids:
            self._call(lambda: self._subscriber.acknowledge(
                request={"subscription": self.subscription_path(subscription), "ack_ids": list(ack_ids)}, retry=self._retry, timeout=self.timeout),
                f"ack on {subscription}")

    def modify_ack_deadline(self, subscription: str, ack_ids: Sequence[str], seconds: float) -> None:
        if ack_ids:
            self._call(lambda: self._subscriber.modify_ack_deadline(
                request={"subscription": self.subscription_path(subscription), "ack_ids": list(ack_ids),
                         "ack_deadline_seconds": int(seconds)}, retry=self._retry, timeout=self.timeout),
                f"modify ack deadline on {subscription}")

    def nack(self, subscription: str, ack_ids: Sequence[str]) -> None:
        """Make the messages available again at once (Pub/Sub counts a failed delivery)."""
        self.modify_ack_deadline(subscription, ack_ids, 0)

    def close(self) -> None:
        self._publisher.stop()
        self._subscriber.close()
        if self._scheduler is not None:
            self._scheduler.close()
