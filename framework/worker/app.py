"""The worker's HTTP app: Pub/Sub push deliveries in, 2xx only once the work is recorded.

Routes (the contract with ``pipectl package --worker`` and the push subscriptions that
``pipectl plan``/``apply`` manage):

* ``POST /trigger``: a phase trigger from the push subscription of a trigger topic;
* ``POST /task``: a fan-out task from the push subscription of a task topic;
* ``POST /task-dead-letter``: a fan-out task the task subscription dead-lettered, from
  pipectl's push subscription on its dead-letter topic (``<topic>-pipectl-worker``);
* ``GET /healthz``: liveness, and what this instance handled.

Status codes, read by Pub/Sub as ack (2xx) or nack (anything else, redelivered with the
subscription's retry policy, dead-lettered after its ``max_delivery_attempts``):

* 200: handled, or a duplicate of something handled (at-least-once delivery);
* 400: not a push delivery, or data the route can never run (FM 5): logged and alerted on
  each delivery; the dead-letter policy moves it aside after the delivery limit;
* 401 / 403: no, or the wrong, OIDC token (:class:`framework.worker.push.Authenticator`);
* 500: the work failed and must be retried (a task attempt failed, a backend was down);
* 503: the trigger is being run by another instance right now (retry later).

Handlers are synchronous (the runner is) and run in Starlette's thread pool: one instance
serves as many deliveries at once as Cloud Run's ``--concurrency`` lets in.
"""
from __future__ import annotations

import contextlib
import logging
import os
import sys
from typing import Any, AsyncIterator, Callable

from framework.worker.push import Authenticator, AuthError, MalformedPush, parse_push
from framework.config.worker import TASK_DEAD_LETTER_PATH
from framework.worker.service import DEAD_LETTER_ROUTE, Reply, WorkerService

log = logging.getLogger(__name__)


def create_app(service: WorkerService | None = None, auth: Authenticator | None = None) -> Any:
    """The ASGI app (``uvicorn framework.worker.app:create_app --factory``). Without
    arguments the project, target and authentication come from the environment
    (``PIPECTL_PROJECT_DIR``, ``PIPECTL_TARGET``) and the target's ``worker:`` settings or
    ``PIPECTL_WORKER_AUDIENCE`` / ``PIPECTL_WORKER_INVOKERS`` / ``PIPECTL_WORKER_AUTH``; a bad
    configuration fails here, at start, not on the first delivery."""
    from starlette.applications import Starlette
    from starlette.concurrency import run_in_threadpool
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    _configure_logging()
    owned = service is None
    svc = service if service is not None else WorkerService.open()
    if auth is None:
        try:
            auth = Authenticator.from_env(worker=getattr(svc.session.backends.target, "worker", None))
        except BaseException:
            if owned:
                svc.close()
            raise
    log.info("worker %s serving project %s (target %s)", svc.instance, svc.project.name,
             os.environ.get("PIPECTL_TARGET") or "default")

    def route(name: str, handler: Callable[[Any], Reply]) -> Callable[[Request], Any]:
        async def endpoint(request: Request) -> JSONResponse:
            try:
                auth.check(request.headers.get("authorization"))
            except AuthError as exc:
                log.error("worker /%s: refused a request from %s: %s", name,
                          request.client.host if request.client else "?", exc)
                return JSONResponse({"error": str(exc)}, status_code=exc.status)
            body = await request.body()
            subscription = ""
            try:
                msg = parse_push(body)
                subscription = msg.subscription_name
                reply = await run_in_threadpool(handler, msg)
            except MalformedPush as exc:
                reply = await run_in_threadpool(svc.reject, name, str(exc), subscription)
            except Exception as exc:  # noqa: BLE001 - answered 500 so Pub/Sub redelivers; logged with its traceback
                log.exception("worker /%s: delivery of %s failed; it will be redelivered", name, subscription or "?")
                return JSONResponse({"outcome": "error", "error": f"{type(exc).__name__}: {exc}"}, status_code=500)
            return JSONResponse(reply.body, status_code=reply.status)

        return endpoint

    async def healthz(request: Request) -> JSONResponse:
        return JSONResponse(svc.health())

    @contextlib.asynccontextmanager
    async def lifespan(app: Any) -> AsyncIterator[None]:
        yield
        if owned:
            svc.close()

    app = Starlette(routes=[Route("/trigger", route("trigger", svc.handle_trigger), methods=["POST"]),
                            Route("/task", route("task", svc.handle_task), methods=["POST"]),
                            Route(TASK_DEAD_LETTER_PATH, route(DEAD_LETTER_ROUTE, svc.handle_task_dead_letter), methods=["POST"]),
                            Route("/healthz", healthz, methods=["GET"])],
                    lifespan=lifespan)
    app.state.worker = svc
    return app


def _configure_logging() -> None:
    """Log lines on stdout (Cloud Run collects them), once per process."""
    root = logging.getLogger()
    if not root.handlers:
        logging.basicConfig(level=os.environ.get("PIPECTL_LOG_LEVEL", "INFO").upper(), stream=sys.stdout,
                            format="%(levelname)s %(name)s: %(message)s")
