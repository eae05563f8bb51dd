"""Apply across processes and failures, on the embedded backends.

- Two applies: the first waits at its confirmation prompt (a real `pipectl apply` on a
  pseudo-terminal) holding the lock; the second fails fast naming the holder's pid.
- A failure injected mid-apply leaves a state the next plan describes truthfully.
"""
from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from framework.backends.registry import open_backends
from framework.errors import PlanError
from framework.project import load
from framework.plan.actual import TopicProvider, embedded_providers
from framework.plan.applier import apply_plan
from framework.plan.planner import make_plan
from projects import write_project


@pytest.fixture(autouse=True)
def _pinned_orchestrator_hash(monkeypatch):
    """Other work may edit framework/orchestrator/ while these tests run; the orchestrator
    unit's code hash is pinned so 'no changes after apply' tests only what they mean to."""
    monkeypatch.setattr("framework.plan.resources.orchestrator_code_hash", lambda: "pinned-orchestrator-code")


REPO = Path(__file__).resolve().parents[2]


def pipectl(root: Path, *args: str, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "framework.cli", "-p", str(root), *args], capture_output=True, text=True,
                          timeout=120, cwd=REPO, **kw)


def read_until(fd: int, needle: bytes, timeout: float = 60.0) -> bytes:
    """Read a pseudo-terminal until ``needle`` shows up (or fail after ``timeout``)."""
    import select

    buf = b""
    deadline = time.monotonic() + timeout
    while needle not in buf:
        left = deadline - time.monotonic()
        if left <= 0:
            raise AssertionError(f"timed out waiting for {needle!r}; got {buf[-500:]!r}")
        ready, _, _ = select.select([fd], [], [], min(left, 1.0))
        if ready:
            try:
                chunk = os.read(fd, 4096)
            except OSError:
                break
            if not chunk:
                break
            buf += chunk
    return buf


@pytest.mark.skipif(sys.platform == "win32", reason="needs a POSIX pseudo-terminal")
def test_second_apply_fails_fast_naming_the_holder(tmp_path: Path, monkeypatch):
    import pty

    root = write_project(tmp_path / "shop")
    master, slave = pty.openpty()
    first = subprocess.Popen([sys.executable, "-m", "framework.cli", "-p", str(root), "apply"],
                             stdin=slave, stdout=slave, stderr=slave, cwd=REPO)
    os.close(slave)
    try:
        read_until(master, b"Apply these changes?")  # the first apply holds the lock now
        second = pipectl(root, "apply", "--auto-approve")
        assert second.returncode == 1
        assert "another `pipectl apply` holds the lock" in second.stderr
        assert f"pid {first.pid}" in second.stderr
        os.write(master, b"y\n")
        out = read_until(master, b"Apply complete")
        assert first.wait(timeout=60) == 0, out.decode(errors="replace")
    finally:
        if first.poll() is None:
            first.kill()
            first.wait(timeout=10)
        os.close(master)
    assert not (root / ".pipectl" / "apply.lock.json").exists()
    # the subprocess hashed the orchestrator source as it was then; re-plan against that hash
    with open_backends(root) as b:
        applied_hash = b.state.get("pipectl_deployments", "orchestrator.raw")["attributes"]["code_hash"]
    monkeypatch.setattr("framework.plan.resources.orchestrator_code_hash", lambda: applied_hash)
    project = load(root)
    with open_backends(root) as b:
        assert not make_plan(project, embedded_providers(project.name, b.warehouse, b.bus, b.state)).has_changes


class FailingTopics(TopicProvider):
    """The real topic provider, failing on one topic: a crash in the middle of apply."""

    fail_on = "shop-dead-letter"

    def create(self, resource):
        if resource.name == self.fail_on:
            raise RuntimeError("injected: Pub/Sub returned 503")
        super().create(resource)


def providers_with_failure(project, b, fail: bool):
    providers = embedded_providers(project.name, b.warehouse, b.bus, b.state)
    if not fail:
        return providers
    topics = FailingTopics(b.bus, project.name)
    out = []
    for p in providers:
        if p.type == "topic":
            out.append(topics)
        else:
            if p.type == "subscription":
                p.topics = topics
            out.append(p)
    return out


def test_failed_apply_leaves_a_state_the_next_plan_describes(tmp_path: Path):
    root = write_project(tmp_path / "shop")
    project = load(root)
    with open_backends(root) as b:
        providers = providers_with_failure(project, b, fail=True)
        plan = make_plan(project, providers)
        with pytest.raises(PlanError, match=r"apply failed at topic.shop-dead-letter \(create\)") as info:
            apply_plan(plan, providers)
        assert "Pub/Sub returned 503" in str(info.value)
    with open_backends(root) as b:
        providers = providers_with_failure(project, b, fail=False)
        nxt = make_plan(project, providers)
        # topics sort by name: the two before the failing one exist; everything after is still planned
        done = {"dataset", "table"}
        assert {c.address for c in nxt.pending} == {c.address for c in plan.pending if c.type not in done} - {
            "topic.shop-analytics-complete", "topic.shop-analytics-trigger"}
        assert {t.name for t in b.bus.list_topics()} == {"shop-analytics-complete", "shop-analytics-trigger"}
        result = apply_plan(nxt, providers)
        assert result.converged
        assert not make_plan(project, providers).has_changes
