"""The plan/apply library API the CLI calls: manifests + actual state -> Plan -> apply.

``make_plan`` and ``apply_plan`` (in :mod:`framework.plan.applier`) work on any providers
(the in-memory fakes in tests, the embedded backends, Google Cloud); ``plan_project`` /
``apply_project`` open the project's backends for a target and take the apply lock.
"""
from __future__ import annotations

import datetime as dt
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

from framework.errors import PlanError
from framework.manifest.model import Project
from framework.plan.actual import ResourceProvider, Scope, embedded_providers, read_actual
from framework.plan.applier import ApplyResult, apply_plan, check_applicable
from framework.plan.diff import diff
from framework.plan.lock import ApplyLock
from framework.plan.model import Plan, state_fingerprint
from framework.plan.resources import desired_resources


@dataclass(frozen=True)
class PlanOptions:
    allow_destructive: bool = False
    prune: bool = False
    managed_prefixes: tuple[str, ...] = ()


def make_plan(project: Project, providers: Sequence[ResourceProvider], options: PlanOptions = PlanOptions(),
              target: str = "local", runtime: str = "local") -> Plan:
    """Diff the manifests against what the providers read. Resource types no provider
    manages on this backend are left out (and listed nowhere: the backend cannot hold them)."""
    types = {p.type for p in providers}
    desired = [r for r in desired_resources(project, runtime) if r.type in types]
    scope = Scope(project.name, tuple(desired), tuple(options.managed_prefixes))
    actual = read_actual(providers, scope)
    changes = diff(desired, actual, allow_destructive=options.allow_destructive, prune=options.prune)
    return Plan(
        project=project.name, target=target, state_fingerprint=state_fingerprint(actual), changes=tuple(changes),
        allow_destructive=options.allow_destructive, prune=options.prune, managed_prefixes=tuple(options.managed_prefixes),
        created_at=dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
    )


# ------------------------------------------------------------------------ backends
@contextmanager
def open_providers(project_root: str | Path, target: str | None, project: Project) -> Iterator[tuple[list[ResourceProvider], str, str]]:
    """Yield ``(providers, target name, runtime)`` for the project's backends and close them after."""
    from framework.backends.registry import open_backends

    backends = open_backends(project_root, target)
    try:
        warehouse = backends.warehouse
        if hasattr(warehouse, "__enter__"):  # hold one connection for the whole plan/apply (DuckDB)
            warehouse.__enter__()
        providers = backend_providers(backends, project)
        spec = getattr(backends, "target", None)
        name = getattr(spec, "name", None) or target or "local"
        warehouse_type = getattr(getattr(spec, "warehouse", None), "type", "duckdb")
        runtime = "local" if warehouse_type == "duckdb" else "gcp"
        yield providers, str(name), runtime
    finally:
        backends.close()


def backend_providers(backends: Any, project: Project) -> list[ResourceProvider]:
    """Providers for an opened set of backends: the generic ones over the three protocols,
    then any a backend offers itself. A backend (warehouse, bus or state store) may define
    ``plan_providers(project_name) -> list[ResourceProvider]``; each replaces the generic
    provider of the same ``type`` or adds a new type (e.g. Cloud Function deployment units
    on Google Cloud). Nothing else changes for a new backend."""
    state = getattr(backends, "state", None)
    providers = {p.type: p for p in embedded_providers(project.name, backends.warehouse, backends.bus, state)}
    for backend in (backends.warehouse, backends.bus, state):
        offer = getattr(backend, "plan_providers", None)
        if callable(offer):
            for provider in offer(project.name):
                providers[provider.type] = provider
    return list(providers.values())


# ------------------------------------------------------------------------ project API
def plan_project(project_root: str | Path, target: str | None = None, options: PlanOptions = PlanOptions()) -> Plan:
    """`pipectl plan`: load the manifests, read the backend, diff."""
    from framework.manifest import load

    project = load(project_root)
    with open_providers(project_root, target, project) as (providers, name, runtime):
        return make_plan(project, providers, options, name, runtime)


def apply_saved_plan(project_root: str | Path, plan: Plan, target: str | None = None) -> ApplyResult:
    """`pipectl apply plan.json`: apply exactly the saved plan, refusing it if stale."""
    from framework.manifest import load

    check_applicable(plan)
    project = load(project_root)
    if project.name != plan.project:
        raise PlanError(f"the plan is for project '{plan.project}', this project is '{project.name}'")
    with ApplyLock(project_root):
        with open_providers(project_root, target or plan.target, project) as (providers, name, _):
            if name != plan.target:
                raise PlanError(f"the plan was made for target '{plan.target}', not '{name}'", hint=f"pass --target {plan.target}")
            return apply_plan(plan, providers)


def plan_and_apply(project_root: str | Path, target: str | None = None, options: PlanOptions = PlanOptions(),
                   confirm: Callable[[Plan], bool] = lambda plan: True) -> tuple[Plan, ApplyResult | None]:
    """`pipectl apply`: plan under the lock, ask ``confirm``, apply. Returns (plan, None) when
    there is nothing to do or the confirmation was declined."""
    from framework.manifest import load

    project = load(project_root)
    with ApplyLock(project_root):
        with open_providers(project_root, target, project) as (providers, name, runtime):
            plan = make_plan(project, providers, options, name, runtime)
            check_applicable(plan)
            if not plan.pending or not confirm(plan):
                return plan, None
            return plan, apply_plan(plan, providers)


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
           "backend_providers", "load_plan_file", "read_actual"]
