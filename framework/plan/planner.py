"""The plan/apply library API the CLI calls: manifests + actual state -> Plan -> apply.

``make_plan`` and ``apply_plan`` (in :mod:`framework.plan.applier`) work on any providers
(the in-memory fakes in tests, the embedded backends, Google Cloud); ``plan_project`` /
``apply_project`` open the project's backends for a target and take the apply lock.
"""
from __future__ import annotations

import datetime as dt
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, Sequence

from framework.errors import PlanError
from framework.manifest.model import Project
from framework.plan.actual import ResourceProvider, Scope, embedded_providers, read_actual
from framework.plan.applier import ApplyResult, apply_plan, check_applicable
from framework.plan.diff import diff
from framework.plan.lock import ApplyLock, LeaseLock
from framework.plan.model import Plan, state_fingerprint
from framework.plan.push import PushRoute, push_routes, with_push
from framework.plan.resources import desired_resources


@dataclass(frozen=True)
class PlanOptions:
    allow_destructive: bool = False
    prune: bool = False
    managed_prefixes: tuple[str, ...] = ()


def make_plan(project: Project, providers: Sequence[ResourceProvider], options: PlanOptions = PlanOptions(),
              target: str = "local", runtime: str = "local", routes: Mapping[str, PushRoute] | None = None) -> Plan:
    """Diff the manifests against what the providers read. Resource types no provider
    manages on this backend are left out (and listed nowhere: the backend cannot hold them).
    ``routes``: the push wiring of an ``execution: remote`` target (framework.plan.push)."""
    types = {p.type for p in providers}
    desired = [r for r in with_push(desired_resources(project, runtime), routes or {}) if r.type in types]
    scope = Scope(project.name, tuple(desired), tuple(options.managed_prefixes))
    actual = read_actual(providers, scope)
    changes = diff(desired, actual, allow_destructive=options.allow_destructive, prune=options.prune)
    return Plan(
        project=project.name, target=target, state_fingerprint=state_fingerprint(actual), changes=tuple(changes),
        allow_destructive=options.allow_destructive, prune=options.prune, managed_prefixes=tuple(options.managed_prefixes),
        created_at=dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
    )


# ------------------------------------------------------------------------ backends
@dataclass
class Opened:
    """The backends of one target, opened, with the providers over them."""

    backends: Any
    providers: list[ResourceProvider]
    target: str
    runtime: str
    routes: Mapping[str, PushRoute] = field(default_factory=dict)  # execution: remote


@contextmanager
def open_providers(project_root: str | Path, target: str | None, project: Project) -> Iterator[Opened]:
    """Open the target's backends (pipectl.yaml, default embedded) and close them after."""
    from framework.backends.registry import open_backends

    backends = open_backends(project_root, target)
    try:
        spec = getattr(backends, "target", None)
        name = getattr(spec, "name", None) or target or "local"
        warehouse_type = getattr(getattr(spec, "warehouse", None), "type", "duckdb")
        runtime = "local" if warehouse_type == "duckdb" else "gcp"
        routes = push_routes(project, spec) if hasattr(spec, "remote") else {}
        yield Opened(backends, backend_providers(backends, project), str(name), runtime, routes)
    finally:
        backends.close()


@contextmanager
def held(opened: Opened) -> Iterator[None]:
    """Hold one warehouse connection for a burst of reads/DDL (DuckDB opens the file per
    operation otherwise); released between plan and apply so a prompt never blocks others."""
    warehouse = opened.backends.warehouse
    if hasattr(warehouse, "__enter__") and hasattr(warehouse, "__exit__"):
        with warehouse:
            yield
    else:
        yield


def apply_lock(project_root: str | Path, opened: Opened, project: Project) -> ApplyLock | LeaseLock:
    """A file lock when the ledger is a local file (embedded target), else a lease document
    in the target's StateStore (Firestore: operators share no file system)."""
    spec = getattr(opened.backends, "target", None)
    state_type = getattr(getattr(spec, "state", None), "type", "sqlite")
    if state_type == "sqlite":
        return ApplyLock(project_root)
    return LeaseLock(opened.backends.state, project.name)


def backend_providers(backends: Any, project: Project) -> list[ResourceProvider]:
    """Providers for an opened set of backends: the generic ones over the three protocols,
    then any a backend offers itself. A backend (warehouse, bus or state store) may define
    ``plan_providers(project_name) -> list[ResourceProvider]``; each replaces the generic
    provider of the same ``type`` or adds a new type (e.g. Cloud Function deployment units
    on Google Cloud). Nothing else changes for a new backend."""
    from framework.manifest.prefix import owner_label
    from framework.plan.schedules import schedule_providers

    owner = owner_label(project)  # the project, or `dev-project` under a target's prefixes: each plan sees its own
    state = getattr(backends, "state", None)
    providers = {p.type: p for p in embedded_providers(owner, backends.warehouse, backends.bus, state)}
    for provider in schedule_providers(backends, owner):
        providers[provider.type] = provider
    for backend in (backends.warehouse, backends.bus, state):
        offer = getattr(backend, "plan_providers", None)
        if callable(offer):
            for provider in offer(project.name):
                providers[provider.type] = provider
    return list(providers.values())


# ------------------------------------------------------------------------ project API
def load_for_target(project_root: str | Path, target: str | None) -> Project:
    """The project as the target sees it: its datasets and topics under the target's
    ``dataset_prefix``/``topic_prefix`` (pipectl.yaml), so a plan for dev names dev's resources."""
    from framework.backends.registry import target_project

    return target_project(project_root, target)


def plan_project(project_root: str | Path, target: str | None = None, options: PlanOptions = PlanOptions()) -> Plan:
    """`pipectl plan`: load the manifests, read the backend, diff."""
    project = load_for_target(project_root, target)
    with open_providers(project_root, target, project) as opened, held(opened):
        return with_reprocessing(make_plan(project, opened.providers, options, opened.target, opened.runtime, opened.routes),
                                 project, opened)


def with_reprocessing(plan: Plan, project: Project, opened: Opened) -> Plan:
    """The plan plus the processors whose code changed since their last run (their next
    runs reprocess every entity), read from the target's StateStore."""
    import dataclasses

    from framework.plan.reprocess import pending_reprocessing

    state = getattr(opened.backends, "state", None)
    if state is None:
        return plan
    return dataclasses.replace(plan, reprocess=tuple(pending_reprocessing(project, state)))


def apply_saved_plan(project_root: str | Path, plan: Plan, target: str | None = None) -> ApplyResult:
    """`pipectl apply plan.json`: apply exactly the saved plan, refusing it if stale."""
    check_applicable(plan)
    project = load_for_target(project_root, target or plan.target)
    if project.name != plan.project:
        raise PlanError(f"the plan is for project '{plan.project}', this project is '{project.name}'")
    with open_providers(project_root, target or plan.target, project) as opened:
        if opened.target != plan.target:
            raise PlanError(f"the plan was made for target '{plan.target}', not '{opened.target}'", hint=f"pass --target {plan.target}")
        with apply_lock(project_root, opened, project) as lock, held(opened):
            return apply_plan(plan, opened.providers, on_step=lambda change: lock.heartbeat())


def plan_and_apply(project_root: str | Path, target: str | None = None, options: PlanOptions = PlanOptions(),
                   confirm: Callable[[Plan], bool] = lambda plan: True) -> tuple[Plan, ApplyResult | None]:
    """`pipectl apply`: plan under the lock, ask ``confirm``, apply (re-checking that the
    state did not change while asking). Returns (plan, None) when there is nothing to do or
    the confirmation was declined."""
    project = load_for_target(project_root, target)
    with open_providers(project_root, target, project) as opened:
        with apply_lock(project_root, opened, project) as lock:
            with held(opened):
                plan = with_reprocessing(make_plan(project, opened.providers, options, opened.target, opened.runtime, opened.routes),
                                         project, opened)
            check_applicable(plan)
            if not plan.pending or not confirm(plan):
                return plan, None
            lock.heartbeat()
            with held(opened):
                return plan, apply_plan(plan, opened.providers, on_step=lambda change: lock.heartbeat())


def load_plan_file(path: str | Path) -> Plan:
    try:
        text = Path(path).read_text()
    except FileNotFoundError:
        raise PlanError(f"plan file {path} does not exist", hint="create one with `pipectl plan --out plan.json`") from None
    try:
        return Plan.from_json(text)
    except (ValueError, KeyError, TypeError) as exc:
        raise PlanError(f"plan file {path} is not a pipectl plan: {exc}") from exc


__all__ = ["make_plan", "plan_project", "apply_saved_plan", "plan_and_apply", "PlanOptions", "open_providers",
           "backend_providers", "load_plan_file", "read_actual", "apply_lock", "Opened"]
