"""Fixtures for orchestrator tests: a small project written to tmp_path, a fake bus that
records publishes (and fails on demand), a controllable clock and envelope builders."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from framework.backends.sqlite_state import SQLiteStateStore
from framework.manifest import load_project
from framework.manifest.model import Project
from framework.orchestrator import Orchestrator, decode, make_envelope
from framework.alerts import MemorySink

DAY = "2026-11-28"
RAW = ["r1", "r2", "r3", "r4", "r5"]


def write_project(root: Path, raw_transition: dict | None = None, analytics_transition: dict | None = None) -> Project:
    """raw(r1..r5) -> analytics(a1<-r1,r2; a2<-r3; a3<-r4,r5) -> precompute(c1<-a1,a2,a3)."""
    def proc(name: str, phase: str, inputs: list[str], aliases: list[str] | None = None) -> dict:
        d = {"name": name, "phase": phase, "entity": "player", "inputs": inputs,
             "output": {"table": f"{name}_out", "columns": [{"name": "game_date", "type": "DATE"},
                                                             {"name": "player_lookup", "type": "STRING"}]},
             "transform": {"sql": "x.sql"}}
        if aliases:
            d["aliases"] = aliases
        return d

    raw_t = {"completion_topic": "raw-complete", "trigger_topic": "analytics-trigger", "critical": ["r1"], "debounce": "2m"}
    raw_t.update(raw_transition or {})
    an_t = {"completion_topic": "analytics-complete", "trigger_topic": "precompute-trigger", "debounce": "2m"}
    an_t.update(analytics_transition or {})
    doc = {
        "version": 1, "project": "demo", "partition": {"column": "game_date", "type": "DATE"},
        "entity_kinds": {"player": {"key": "player_lookup"}, "team": {"key": "team_abbr"}},
        "phases": [
            {"name": "raw", "order": 1, "dataset": "demo_raw", "transition": raw_t},
            {"name": "analytics", "order": 2, "dataset": "demo_an", "transition": an_t},
            {"name": "precompute", "order": 3, "dataset": "demo_pre"},
        ],
        "processors": [proc("r1", "raw", [], ["R1Processor"]), *[proc(n, "raw", []) for n in RAW[1:]],
                       proc("a1", "analytics", ["r1", "r2"]), proc("a2", "analytics", ["r3"]),
                       proc("a3", "analytics", ["r4", "r5"]), proc("c1", "precompute", ["a1", "a2", "a3"])],
    }
    topics = {"version": 1, "topics": [{"name": n, "contract": c} for n, c in [
        ("raw-complete", "completion"), ("analytics-trigger", "trigger"),
        ("analytics-complete", "completion"), ("precompute-trigger", "trigger")]]}
    (root / "x.sql").write_text("SELECT 1 AS player_lookup\n")
    (root / "processors.yaml").write_text(yaml.safe_dump(doc, sort_keys=False))
    (root / "topics.yaml").write_text(yaml.safe_dump(topics, sort_keys=False))
    project, diags = load_project(root)  # resolver only: graph rules belong to other tests
    assert project is not None and not diags.errors, diags.errors
    return project


class FakeBus:
    """Records publishes. ``fail_next`` makes the next publishes raise before sending;
    ``fail_after_send`` makes them send and then raise (the caller never learns it worked)."""

    supports_push = False

    def __init__(self) -> None:
        self.published: list[tuple[str, bytes, dict]] = []
        self.fail_next = 0
        self.fail_after_send = 0

    def publish(self, topic: str, data: bytes, attributes: Any = None) -> str:
        if self.fail_next:
            self.fail_next -= 1
            raise ConnectionError(f"injected publish failure on {topic}")
        self.published.append((topic, data, dict(attributes or {})))
        if self.fail_after_send:
            self.fail_after_send -= 1
            raise TimeoutError(f"injected failure after sending to {topic}")
        return str(len(self.published))

    def triggers(self, topic: str | None = None) -> list[dict]:
        return [decode(d) for t, d, _ in self.published if topic is None or t == topic]

    def trigger_ids(self, topic: str | None = None) -> list[str]:
        return [e["trigger_id"] for e in self.triggers(topic)]


class Clock:
    def __init__(self, t: float = 1_800_000_000.0):
        self.t = t

    def __call__(self) -> float:
        return self.t

    def advance(self, seconds: float) -> None:
        self.t += seconds


def completion(processor: str, partition: str = DAY, **fields: Any) -> dict:
    default = ("raw" if processor[:1] in "rR" or "raw" in processor else "precompute" if processor.startswith("c") else "analytics")
    phase = fields.pop("phase", default)
    fields.setdefault("status", "success")
    fields.setdefault("correlation_id", "run-1")
    if fields["status"] == "failed":
        fields.setdefault("error_type", "RuntimeError")
    return make_envelope(processor_name=processor, phase=phase, partition=partition, partition_column="game_date", **fields)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def bus() -> FakeBus:
    return FakeBus()


@pytest.fixture
def alerts() -> MemorySink:
    return MemorySink()


@pytest.fixture
def store(tmp_path: Path):
    s = SQLiteStateStore(tmp_path / "ledger.sqlite")
    yield s
    s.close()


@pytest.fixture
def make_orch(tmp_path: Path, store, bus, alerts, clock):
    """make_orch(raw_transition={...}, **orchestrator kwargs) -> Orchestrator."""
    def factory(raw_transition: dict | None = None, analytics_transition: dict | None = None, **kwargs: Any) -> Orchestrator:
        root = tmp_path / "project"
        root.mkdir(exist_ok=True)
        project = write_project(root, raw_transition, analytics_transition)
        return Orchestrator(project, store, bus, alerts=alerts, clock=clock, **kwargs)
    return factory


def dumps(env: dict) -> bytes:
    return json.dumps(env).encode()


class FileBus(FakeBus):
    """A FakeBus shared by processes: every publish is one appended JSON line.

    ``exit_before_send`` / ``exit_after_send`` kill the process (os._exit) at that point."""

    def __init__(self, path: Path):
        super().__init__()
        self.path = Path(path)
        self.exit_before_send = False
        self.exit_after_send = False

    def publish(self, topic: str, data: bytes, attributes: Any = None) -> str:
        import os

        if self.exit_before_send:
            os._exit(17)
        line = json.dumps({"topic": topic, "data": data.decode(), "attributes": dict(attributes or {}), "pid": os.getpid()})
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, (line + "\n").encode())
        finally:
            os.close(fd)
        if self.exit_after_send:
            os._exit(18)
        return "1"

    @property  # type: ignore[override]
    def published(self) -> list[tuple[str, bytes, dict]]:
        if not self.path.exists():
            return []
        rows = [json.loads(line) for line in self.path.read_text().splitlines() if line.strip()]
        return [(r["topic"], r["data"].encode(), r["attributes"]) for r in rows]

    @published.setter
    def published(self, value: Any) -> None:  # FakeBus.__init__ assigns it
        pass


class InjectedCrash(RuntimeError):
    """Raised by FlakyStore to simulate a process dying at a chosen transaction."""


class FlakyStore:
    """Wraps a StateStore; ``fail_txn[n] = "before" | "inside"`` makes transaction number n
    (1-based, counted from arming) raise before running or after its writes, before commit."""

    def __init__(self, inner: Any):
        self.inner = inner
        self.count = 0
        self.fail_txn: dict[int, str] = {}

    def arm(self, **plan: str) -> None:
        self.count = 0
        self.fail_txn = {int(k.lstrip("t")): v for k, v in plan.items()}

    def run_transaction(self, fn: Any, max_attempts: int = 10) -> Any:
        self.count += 1
        mode = self.fail_txn.pop(self.count, None)
        if mode == "before":
            raise InjectedCrash(f"crash before transaction {self.count}")
        if mode == "inside":
            def boom(txn: Any) -> Any:
                fn(txn)
                raise InjectedCrash(f"crash inside transaction {self.count}, before commit")
            return self.inner.run_transaction(boom, max_attempts)
        return self.inner.run_transaction(fn, max_attempts)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)
