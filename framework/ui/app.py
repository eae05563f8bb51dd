"""The `pipectl ui` ASGI application (Starlette): routes, the token gate, the actions.

Pages are rendered on the server from :mod:`framework.ui.views` with Jinja (the same
templates write the static site); live parts of a page carry htmx polling attributes, so
htmx refetches the page and swaps only those parts (no full reload, no JavaScript build).
Library calls are synchronous (SQLite, DuckDB, Firestore clients): Starlette runs them in
its thread pool. Actions (re-run a partition, the sweep, replaying a dead letter) exist only
with ``allow_actions``; one runs at a time, in a background thread, and its outcome is
shown on every page until the next one.
"""
from __future__ import annotations

import threading
import time
import traceback
from typing import Any
from urllib.parse import parse_qs

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.middleware.base import BaseHTTPMiddleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from framework.ui import views
from framework.ui.render import STATIC_DIR, Renderer
from framework.ui.security import COOKIE, Guard, hostname


class Actions:
    """One action at a time, in a background thread; its last outcome is kept for the pages."""

    def __init__(self, src: views.Source):
        self.src = src
        self.lock = threading.Lock()
        self.current: str | None = None
        self.last: dict[str, Any] | None = None

    def start(self, label: str, fn: Any) -> bool:
        if not self.lock.acquire(blocking=False):
            return False
        self.current = label

        def work() -> None:
            started = time.time()
            try:
                detail = fn()
                self.last = {"label": label, "ok": True, "detail": detail, "at": started}
            except Exception as exc:  # noqa: BLE001 - shown on the page: an action must never fail silently
                self.last = {"label": label, "ok": False, "detail": f"{type(exc).__name__}: {exc}", "at": started,
                             "traceback": traceback.format_exc(limit=5)}
            finally:
                self.current = None
                self.lock.release()

        threading.Thread(target=work, name=f"pipectl-ui-{label}", daemon=True).start()
        return True

    # -- the three actions, each the library function its CLI command calls --------------
    def rerun(self, date: str, from_phase: str | None) -> str:
        from framework.drive.session import Session, run_partition

        with Session.open(self.src.root, self.src.target) as sess:
            report = run_partition(sess, date, from_phase=from_phase or None)
        what = f"run {date}{' from ' + from_phase if from_phase else ''}: {report.status}"
        if report.status == "failed":  # like `pipectl run` exiting 1: shown as a failed action
            raise RuntimeError(f"{what} (see the partition page and the alerts)")
        return what

    def sweep(self) -> str:
        from framework.orchestrator.service import sweep

        decisions = sweep(self.src.root, self.src.target)
        return f"sweep: {len(decisions)} decision(s)" + "".join(
            f"; {d['partition']} {d['transition']} {d['action']}" for d in decisions[:10])

    def replay(self, letter_id: str) -> str:
        from framework.drive.dead_letters import replay_dead_letters

        project = self.src.project()
        with self.src.backends() as b:
            state = None if hasattr(b.bus, "dead_letters") else b.state
            done = replay_dead_letters(b.bus, project, state, letter_id=letter_id)
        if not done:
            raise LookupError(f"no dead letter with id {letter_id}")
        return "; ".join(f"replayed [{r.id}] to {r.to_topic}" if r.new_message_id else f"[{r.id}] was replayed before"
                         for r in done)


def create_app(project_root: str = ".", target: str | None = None, *, token: str | None = None,
               allow_actions: bool = False, refresh_seconds: float = 3.0,
               allowed_hosts: list[str] | None = None) -> Starlette:
    """The app for one project and target. ``token``: required on every request when set.
    ``allowed_hosts``: the Host names accepted (None: any); `pipectl ui` on loopback without a
    token passes the loopback names, so a DNS-rebinding page cannot read it through its own name."""
    src = views.Source(str(project_root), target)
    guard = Guard(token)
    actions = Actions(src)
    renderer = Renderer(live=True, refresh_seconds=refresh_seconds)
    project_name = src.project().name  # fails fast, located, on a broken manifest

    def page(request: Request, template: str, status_code: int = 200, **context: Any) -> HTMLResponse:
        html = renderer.page(template, path=request.url.path, query=str(request.url.query),
                             allow_actions=allow_actions, csrf=guard.csrf_token(), project_name=project_name, action=actions.last,
                             action_running=actions.current, **context)
        return HTMLResponse(html, status_code=status_code)

    async def pipeline_page(request: Request) -> Response:
        raw = request.query_params.get("select", "").strip()  # one CLI expression: space = union, comma = intersection
        selectors = [raw] if raw else []
        data = await run_in_threadpool(views.pipeline, src, request.query_params.get("partition") or None, selectors)
        data.pop("project")
        return page(request, "pipeline.html.j2", 400 if data["selection_error"] else 200, **data)

    async def processor_page(request: Request) -> Response:
        data = await run_in_threadpool(views.processor, src, request.path_params["name"])
        if data is None:
            return page(request, "error.html.j2", 404, message=f"no processor '{request.path_params['name']}'")
        data.pop("project")
        return page(request, "processor.html.j2", **data)

    async def partitions_page(request: Request) -> Response:
        return page(request, "partitions.html.j2", **await run_in_threadpool(views.grid, src))

    async def partition_page(request: Request) -> Response:
        return page(request, "partition.html.j2", **await run_in_threadpool(views.partition, src, request.path_params["date"]))

    async def traces_page(request: Request) -> Response:
        return page(request, "traces.html.j2", correlations=await run_in_threadpool(views.recent_correlations, src))

    async def trace_page(request: Request) -> Response:
        data = await run_in_threadpool(views.trace, src, request.path_params["cid"])
        if not data["tree"].children:
            return page(request, "error.html.j2", 404, message=f"no runs or triggers recorded for correlation id "
                        f"{data['correlation_id']} (see the traces page)")
        return page(request, "trace.html.j2", **data)

    async def alerts_page(request: Request) -> Response:
        alerts = await run_in_threadpool(views.alerts, src)
        letters = await run_in_threadpool(views.dead_letters, src)
        return page(request, "alerts.html.j2", alerts=alerts, **letters)

    async def action(request: Request) -> Response:
        if not allow_actions:
            return PlainTextResponse("read-only: start `pipectl ui --allow-actions` to enable actions", 403)
        if not guard.same_origin(request.headers.get("origin"), request.headers.get("referer"),
                                 request.url.scheme, request.headers.get("host", "")):
            return PlainTextResponse("cross-site request refused (Origin does not match)", 403)
        form = {k: v[0] for k, v in parse_qs((await request.body()).decode("utf-8", "replace")).items()}
        if not guard.csrf_ok(form.get("csrf")):
            return PlainTextResponse("missing or wrong CSRF token: reload the page and try again", 403)
        name = request.path_params["name"]
        if name == "rerun" and form.get("partition"):
            job = (f"rerun {form['partition']}", lambda: actions.rerun(form["partition"], form.get("from_phase")))
        elif name == "sweep":
            job = ("sweep", actions.sweep)
        elif name == "replay" and form.get("id"):
            job = (f"replay {form['id']}", lambda: actions.replay(form["id"]))
        else:
            return PlainTextResponse(f"unknown action or missing field: {name}", 400)
        if not actions.start(*job):
            return PlainTextResponse(f"another action is running ({actions.current}); try again when it ends", 409)
        back = form.get("back") or "/"
        return RedirectResponse(back if back.startswith("/") and not back.startswith("//") else "/", 303)

    async def healthz(request: Request) -> Response:
        return PlainTextResponse("ok")

    routes = [
        Route("/", pipeline_page), Route("/processor/{name}", processor_page),
        Route("/partitions", partitions_page), Route("/partition/{date}", partition_page),
        Route("/traces", traces_page), Route("/trace/{cid}", trace_page), Route("/alerts", alerts_page),
        Route("/actions/{name}", action, methods=["POST"]), Route("/healthz", healthz),
        Mount("/static", StaticFiles(directory=str(STATIC_DIR)), name="static"),
    ]
    async def gate(request: Request, call_next: Any) -> Response:
        if allowed_hosts is not None and hostname(request.headers.get("host", "")) not in allowed_hosts:
            return PlainTextResponse("unexpected Host header: open the URL `pipectl ui` printed", 400)
        query_token = request.query_params.get("token")
        if not guard.token_ok(query_token, request.cookies.get(COOKIE), request.headers.get("authorization")):
            return PlainTextResponse("token required: open the URL `pipectl ui` printed (it carries ?token=...)", 401)
        response = await call_next(request)
        if guard.token and query_token:
            response.set_cookie(COOKIE, guard.token, httponly=True, samesite="strict")
        response.headers["X-Frame-Options"] = "DENY"
        response.headers["Content-Security-Policy"] = ("default-src 'self'; img-src 'self' data:; style-src 'self' "
                                                       "'unsafe-inline'; frame-ancestors 'none'")
        response.headers["Referrer-Policy"] = "same-origin"
        return response

    app = Starlette(routes=routes, middleware=[Middleware(BaseHTTPMiddleware, dispatch=gate)])

    app.state.actions = actions
    app.state.guard = guard
    return app
