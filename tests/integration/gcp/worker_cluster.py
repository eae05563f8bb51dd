"""A local stand-in of the deployment on the emulators: N worker processes behind one URL.

Used by test_worker_e2e.py and bench/bench_worker_scaling.py. What is real: the worker
processes (``python -m framework.worker``), the orchestrator Cloud Function bundle served
by functions-framework, Pub/Sub push subscriptions of the emulator delivering to them over
HTTP, BigQuery and Firestore emulators. The one LOCAL STAND-IN is :class:`RoundRobinProxy`:
Cloud Run gives a service one URL and spreads requests over its instances; the proxy does the
same for the worker processes (a refused connection goes to the next instance, as Cloud Run
never routes to a dead one; a connection cut mid-request answers 502, so Pub/Sub redelivers).
"""
from __future__ import annotations

import http.client
import itertools
import os
import socket
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from framework.backends.protocols import SubscriptionConfig, TopicConfig

PYTHON = sys.executable


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_listening(port: int, proc: subprocess.Popen, log: Path, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"process on port {port} exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise RuntimeError(f"nothing listens on {port} after {timeout}s:\n{log.read_text()[-3000:]}") from None
            time.sleep(0.2)


class RoundRobinProxy:
    """One URL for N local worker ports (see the module docstring)."""

    def __init__(self, ports: list[int]):
        self.ports = list(ports)
        self._next = itertools.count()
        self._lock = threading.Lock()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                status, payload = proxy.forward(self.path, body, {k: v for k, v in self.headers.items()
                                                                  if k.lower() in ("content-type", "authorization")})
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def forward(self, path: str, body: bytes, headers: dict[str, str]) -> tuple[int, bytes]:
        with self._lock:
            start = next(self._next)
        for i in range(len(self.ports)):
            port = self.ports[(start + i) % len(self.ports)]
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=900)
            try:
                conn.connect()
            except OSError:
                continue  # a dead instance gets no traffic
            try:
                conn.request("POST", path, body, headers)
                resp = conn.getresponse()
                return resp.status, resp.read()
            except (OSError, http.client.HTTPException) as exc:  # cut mid-request: Pub/Sub redelivers on 502
                return 502, f'{{"error": "instance on {port} failed: {type(exc).__name__}"}}'.encode()
            finally:
                conn.close()
        return 503, b'{"error": "no live instance"}'

    def start(self) -> str:
        self.thread.start()
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def start_worker(project_dir: Path, log_path: Path, port: int) -> subprocess.Popen:
    env = {**os.environ, "PIPECTL_PROJECT_DIR": str(project_dir), "PIPECTL_TARGET": "gcp", "PIPECTL_WORKER_AUTH": "none",
           "PYTHONPATH": os.pathsep.join(p for p in (str(Path(__file__).resolve().parents[3]), os.environ.get("PYTHONPATH")) if p)}
    with open(log_path, "wb") as log:
        return subprocess.Popen([PYTHON, "-m", "framework.worker", "--host", "127.0.0.1", "--port", str(port)],
                                env=env, stdout=log, stderr=subprocess.STDOUT)


def start_function(bundle_path: Path, log_path: Path, port: int) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(bundle_path), "PIPECTL_TARGET": "gcp"}
    env.pop("PIPECTL_PROJECT_DIR", None)
    with open(log_path, "wb") as log:
        return subprocess.Popen([PYTHON, "-m", "functions_framework", "--source", "main.py", "--target", "handle_completion",
                                 "--signature-type", "cloudevent", "--host", "127.0.0.1", "--port", str(port)],
                                cwd=bundle_path, env=env, stdout=log, stderr=subprocess.STDOUT)


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


def push_topology(bus: Any, project: Any, gcp_project: str, worker_url: str, function_port: int | None,
                  prefix: str, tasks: bool = True) -> list[str]:
    """Topics of the project and the push subscriptions of the deployment: trigger topics to
    the worker's ``/trigger``, task topics to ``/task``, completion topics to the orchestrator
    function (none without ``function_port``; no task subscription without ``tasks``). Ack deadlines and delivery limits come from topics.yaml (the trigger's at least
    the longest phase); returns the subscription names."""
    fanout = {p.fanout.task_topic for p in project.processors.values() if p.fanout}
    completions = {t.completion_topic for t in project.transitions() if t.completion_topic}
    names = set(project.topics)
    for topic in project.topics.values():
        for sub in topic.subscriptions:
            if sub.dead_letter_topic:
                names.add(sub.dead_letter_topic)
        if topic.dead_letter_topic:
            names.add(topic.dead_letter_topic)
    for name in sorted(names):
        bus.create_topic(TopicConfig(name))
    subs = []
    for topic in project.topics.values():
        if topic.name in fanout:
            if not tasks:
                continue
            endpoint, deadline = f"{worker_url}/task", 120
        elif topic.name in completions:
            if function_port is None:  # no orchestrator in this setup (the bench)
                continue
            endpoint, deadline = f"http://127.0.0.1:{function_port}/projects/{gcp_project}/topics/{topic.name}", 60
        elif topic.contract == "trigger":
            endpoint, deadline = f"{worker_url}/trigger", 600
        else:
            continue
        declared = topic.subscriptions[0] if topic.subscriptions else None
        name = f"{prefix}{topic.name}-push"
        bus.create_subscription(SubscriptionConfig(
            name, topic.name, ack_deadline_seconds=deadline,
            max_delivery_attempts=declared.max_delivery_attempts if declared else 5,
            dead_letter_topic=(declared.dead_letter_topic if declared else None) or topic.dead_letter_topic,
            push_endpoint=endpoint))
        subs.append(name)
    return subs
