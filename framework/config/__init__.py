"""Backend targets from ``pipectl.yaml`` (optional) in the project root.

Why a file: the same manifests run on the embedded backends on a laptop and on Google Cloud;
only the target changes (``--target gcp``). Without a file, the embedded ``local`` target is
used (DuckDB warehouse, SQLite local bus and ledger under ``.pipectl/``). Format::

    version: 1                     # optional
    default_target: local          # optional; else 'local' if defined, else the only target
    targets:
      local:
        warehouse: {type: duckdb, path: .pipectl/warehouse.duckdb}
        bus: {type: local, path: .pipectl/bus.sqlite}
        state: {type: sqlite, path: .pipectl/ledger.sqlite}
      gcp:
        project: ${GOOGLE_CLOUD_PROJECT:-my-proj}
        location: US
        warehouse: {type: bigquery}
        bus: {type: pubsub}
        state: {type: firestore, database: "(default)"}

A target may also say where processors execute (``execution: local | remote``; remote needs
a Pub/Sub bus: a generic worker service on Cloud Run receives the triggers and fan-out tasks
by push) and how that worker is deployed and sized (``worker:``), and where the orchestrator
function listens when its completion subscriptions push to it (``orchestrator: {url}``);
see :mod:`framework.config.worker` and docs/gcp.md.

Target-level ``project`` and ``location`` are passed to every backend whose constructor
accepts them. A role left out of a target uses the embedded backend. String values may use
``${VAR}`` or ``${VAR:-default}`` from the environment. Errors are located
(``pipectl.yaml:LINE:COL``) and all reported at once.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from framework.config import paths
from framework.config.backend_types import known_types
from framework.config.worker import EXECUTIONS, PushTarget, WorkerSettings, parse_worker
from framework.errors import ConfigError, Location
from framework.manifest.diagnostics import Diagnostics, did_you_mean

CONFIG_FILE = "pipectl.yaml"
LOCAL = "local"
ROLES = ("warehouse", "bus", "state")
SHARED_KEYS = ("project", "location", "dataset_prefix", "topic_prefix", "lineage")
_ENV = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


@dataclass(frozen=True)
class BackendSpec:
    """One backend of a target: its registered ``type`` and constructor options."""

    role: str
    type: str
    options: Mapping[str, Any] = field(default_factory=dict)
    location: Location = Location(CONFIG_FILE)


@dataclass(frozen=True)
class Target:
    """A named set of backends (``local``, ``gcp``, ...)."""

    name: str
    warehouse: BackendSpec
    bus: BackendSpec
    state: BackendSpec
    settings: Mapping[str, Any] = field(default_factory=dict)  # target-level project/location
    location: Location = Location(CONFIG_FILE)
    execution: str = "local"  # "remote": processors run in the worker service (framework.config.worker)
    worker: WorkerSettings | None = None
    orchestrator: PushTarget | None = None  # the orchestrator function's URL for push completions

    def spec(self, role: str) -> BackendSpec:
        return getattr(self, role)

    @property
    def dataset_prefix(self) -> str:
        return str(self.settings.get("dataset_prefix") or "")

    @property
    def topic_prefix(self) -> str:
        return str(self.settings.get("topic_prefix") or "")

    def apply(self, project: Any) -> Any:
        """``project`` with this target's name prefixes (datasets, topics): what every
        command that opens the target runs on (framework.manifest.prefix)."""
        from framework.manifest.prefix import with_prefixes

        return with_prefixes(project, self.dataset_prefix, self.topic_prefix)

    @property
    def remote(self) -> bool:
        return self.execution == "remote"

    def worker_settings(self) -> WorkerSettings:
        """The worker's settings, defaults filled in (a remote target without ``worker:``);
        its Cloud Run service named with the target's prefix (``dev-pipectl-worker``), as the
        orchestrator's functions are: dev's deploy never replaces prod's service."""
        from dataclasses import replace

        from framework.manifest.prefix import service_prefix

        worker = self.worker or WorkerSettings(location=self.location)
        prefix = service_prefix(self.dataset_prefix, self.topic_prefix)
        if prefix and not worker.service.startswith(prefix):
            worker = replace(worker, service=prefix + worker.service)
        return worker


def embedded_spec(role: str) -> BackendSpec:
    """The embedded backend of ``role``; its path defaults to ``.pipectl/<file>``."""
    kinds = {"warehouse": ("duckdb", paths.WAREHOUSE_FILE), "bus": ("local", paths.BUS_FILE), "state": ("sqlite", paths.LEDGER_FILE)}
    kind, file = kinds[role]
    return BackendSpec(role, kind, {"path": f"{paths.STATE_DIR_NAME}/{file}"}, Location("(embedded default)"))


def embedded_target(name: str = LOCAL) -> Target:
    return Target(name, embedded_spec("warehouse"), embedded_spec("bus"), embedded_spec("state"), {}, Location("(embedded default)"))


@dataclass(frozen=True)
class Config:
    """All targets of a project and the default one. ``path`` is None without a file."""

    targets: Mapping[str, Target]
    default_target: str = LOCAL
    path: Path | None = None

    def target(self, name: str | None = None) -> Target:
        """The named target, else the default; unknown names suggest the closest one."""
        chosen = name or self.default_target
        found = self.targets.get(chosen)
        if found is None:
            where = str(self.path) if self.path else "the embedded configuration"
            hint = did_you_mean(chosen, self.targets) or f"known targets: {', '.join(sorted(self.targets))}"
            raise ConfigError(f"unknown target '{chosen}' in {where}", hint=hint)
        return found


def _expand_env(value: Any, loc: Location, diags: Diagnostics) -> Any:
    if not isinstance(value, str):
        return value

    def sub(m: re.Match[str]) -> str:
        var, default = m.group(1), m.group(2)
        if var in os.environ:
            return os.environ[var]
        if default is not None:
            return default
        diags.error("config-env", f"environment variable {var} is not set", loc, f"export {var}=... or write ${{{var}:-default}}")
        return ""

    return _ENV.sub(sub, value)


def _spec(role: str, data: Any, loc_of, base: tuple, diags: Diagnostics) -> BackendSpec:
    if data is None:
        return embedded_spec(role)
    kind = data["type"]
    known = known_types(role)
    if kind not in known:
        diags.error("config-type", f"unknown {role} type '{kind}'", loc_of(*base, "type"),
                    did_you_mean(kind, known) or f"use one of: {', '.join(sorted(known))}")
    options = {k: _expand_env(v, loc_of(*base, k), diags) for k, v in data.items() if k != "type"}
    return BackendSpec(role, kind, options, loc_of(*base))


def _execution(name: str, t: Mapping[str, Any], specs: Mapping[str, BackendSpec], loc_of, base: tuple,
               diags: Diagnostics) -> tuple[str, WorkerSettings | None, PushTarget | None]:
    """``execution`` / ``worker`` / ``orchestrator`` of one target. Remote execution needs
    Pub/Sub (push subscriptions to the worker), a warehouse and a ledger every worker instance
    reaches (not the embedded files of one machine)."""
    execution = t.get("execution", "local")
    expand = lambda value, loc: _expand_env(value, loc, diags)  # noqa: E731
    try:
        worker = parse_worker(t.get("worker"), loc_of, (*base, "worker"), expand)
    except ConfigError as exc:
        diags.error("config-worker", exc.message, getattr(exc, "location", None) or loc_of(*base, "worker"), exc.hint)
        worker = None
    orch = t.get("orchestrator")
    orchestrator = None
    if orch is not None:
        orchestrator = PushTarget(expand(orch["url"], loc_of(*base, "orchestrator", "url")),
                                  expand(orch.get("service_account"), loc_of(*base, "orchestrator", "service_account")),
                                  expand(orch.get("audience"), loc_of(*base, "orchestrator", "audience")))
    if execution == "remote":
        wrong = [f"{role} '{specs[role].type}'" for role, ok in (("bus", "pubsub"), ("warehouse", "bigquery"), ("state", "firestore"))
                 if specs[role].type != ok and specs[role].type in ("local", "duckdb", "sqlite")]
        if wrong:
            diags.error("config-execution", f"target '{name}': execution: remote needs Google Cloud backends every "
                        f"worker instance reaches (bus pubsub, warehouse bigquery, state firestore); this target uses "
                        f"{', '.join(wrong)}", loc_of(*base, "execution"),
                        "use `execution: local` here, or declare the gcp backends (docs/gcp.md#execution-remote)")
    elif execution not in EXECUTIONS:  # pragma: no cover - the schema's enum reports it first
        diags.error("config-execution", f"unknown execution '{execution}'", loc_of(*base, "execution"), "local or remote")
    return execution, worker, orchestrator


def parse_config(data: Mapping[str, Any], loc_of, path: Path | None, diags: Diagnostics) -> Config:
    """Build a Config from schema-valid data; ``loc_of(*json_path)`` locates a node."""
    targets: dict[str, Target] = {}
    for name, t in (data.get("targets") or {}).items():
        t = t or {}
        base = ("targets", name)
        settings = {k: _expand_env(t[k], loc_of(*base, k), diags) for k in SHARED_KEYS if k in t}
        _check_service_prefix(name, settings, loc_of, base, diags)
        if isinstance((t.get("lineage") or {}).get("api_key"), str):  # the key itself: refused, never echoed
            diags.error("config-secret", f"target '{name}': lineage.api_key is written in pipectl.yaml (which "
                        "`pipectl package` copies into the deploy bundle)", loc_of(*base, "lineage", "api_key"),
                        "write api_key: {env: OPENLINEAGE_API_KEY} or {secret: projects/P/secrets/S/versions/latest}")
        specs = {role: _spec(role, t.get(role), loc_of, (*base, role), diags) for role in ROLES}
        execution, worker, orchestrator = _execution(name, t, specs, loc_of, base, diags)
        targets[name] = Target(name, specs["warehouse"], specs["bus"], specs["state"], settings, loc_of(*base),
                               execution, worker, orchestrator)
        _check_worker_service(targets[name], loc_of, base, diags)
    default = data.get("default_target")
    if default is None:
        default = LOCAL if LOCAL in targets or len(targets) != 1 else next(iter(targets))
        if default not in targets:
            diags.error("config-default", "no default_target and no target named 'local'", loc_of("targets"),
                        f"add 'default_target: {sorted(targets)[0]}'")
    elif default not in targets:
        diags.error("config-default", f"default_target '{default}' is not a target", loc_of("default_target"),
                    did_you_mean(default, targets) or f"known targets: {', '.join(sorted(targets))}")
    return Config(targets, default, path)


SERVICE_PREFIX_MAX = 24  # leaves 39 of Cloud Run's 63 characters for "pipectl-orch-<phase>"


def _check_service_prefix(name: str, settings: Mapping[str, Any], loc_of, base: tuple, diags: Diagnostics) -> None:
    """The target's prefix also names its Cloud Functions and Cloud Run services
    (framework.manifest.prefix.service_prefix): it must start with a letter and stay short."""
    from framework.manifest.prefix import service_prefix

    key = "topic_prefix" if settings.get("topic_prefix") else "dataset_prefix"
    raw = str(settings.get(key) or "")
    prefix = service_prefix(str(settings.get("dataset_prefix") or ""), str(settings.get("topic_prefix") or ""))
    if not prefix:
        return
    if not prefix[0].isalpha():
        diags.error("config-prefix", f"target '{name}': {key} '{raw}' gives service names starting with "
                    f"'{prefix}', but Cloud Functions and Cloud Run names start with a letter", loc_of(*base, key),
                    f"start {key} with a letter, e.g. 'dev{raw}'")
    elif len(prefix) > SERVICE_PREFIX_MAX:
        diags.error("config-prefix", f"target '{name}': {key} '{raw}' gives a service-name prefix of {len(prefix)} "
                    f"characters (at most {SERVICE_PREFIX_MAX}: Cloud Functions and Cloud Run names have 63)",
                    loc_of(*base, key), f"shorten {key}")


def _check_worker_service(target: Target, loc_of, base: tuple, diags: Diagnostics) -> None:
    """The worker's Cloud Run service name, prefix included, must be one Cloud Run accepts."""
    from framework.manifest.prefix import SERVICE_NAME, SERVICE_NAME_MAX

    if target.worker is None and not target.remote:
        return
    name = target.worker_settings().service
    if len(name) > SERVICE_NAME_MAX or not SERVICE_NAME.match(name):
        where = loc_of(*base, "worker") if target.worker is not None else loc_of(*base)
        diags.error("config-service", f"target '{target.name}': worker service name '{name}' (with the target's prefix) "
                    f"is not a valid Cloud Run name (lowercase letters, digits, hyphens; starts with a letter; at most "
                    f"{SERVICE_NAME_MAX} characters)", where, "shorten or lowercase worker.service or the target's prefix")
        return
    from urllib.parse import urlsplit

    host = urlsplit(target.worker_settings().url or "").hostname or ""
    cloud_run = host.endswith(".a.run.app") or re.fullmatch(r"[a-z0-9-]+\.[a-z0-9-]+\.run\.app", host)
    if cloud_run and not host.startswith(name + "-"):  # Cloud Run's URLs start with the service name
        diags.error("config-service", f"target '{target.name}': worker.url {host} is not the URL of its worker service "
                    f"'{name}' (the push subscriptions of this target would deliver to another target's worker)",
                    loc_of(*base, "worker"), f"set worker.url to the URL `pipectl -t {target.name} package --worker` prints "
                    f"(https://{name}-<hash>-<region>.a.run.app)")


def load_config(project_root: str | Path) -> Config:
    """Read ``<project_root>/pipectl.yaml``; without it, the embedded ``local`` target."""
    root = Path(project_root)
    path = root / CONFIG_FILE
    if not path.exists():
        return Config({LOCAL: embedded_target()}, LOCAL, None)
    from framework.manifest.loader import check_schema, load_yaml  # lazy: YAML parser and schemas

    diags = Diagnostics()
    loaded = load_yaml(path, CONFIG_FILE, diags)
    if loaded is not None and not isinstance(loaded.data, dict):
        diags.error("schema", "pipectl.yaml must be a mapping with 'targets'", loaded.loc(), "see docs/backends.md")
    elif loaded is not None and check_schema(loaded, "config", diags):
        config = parse_config(loaded.data, loaded.loc, path, diags)
        if not diags.errors:
            return config
    _raise(diags)
    raise AssertionError("unreachable")  # pragma: no cover


def _raise(diags: Diagnostics) -> None:
    errors = sorted(diags.errors, key=lambda d: (d.location.line, d.location.column))
    first = errors[0]
    message = "; ".join(f"{d.location}: {d.message}" + (f" ({d.hint})" if d.hint else "") for d in errors)
    err = ConfigError(message)
    err.diagnostics = errors  # type: ignore[attr-defined]
    err.location = first.location
    raise err


def resolve_target(project_root: str | Path, name: str | None = None) -> Target:
    """The target the CLI should use: ``--target`` / ``PIPECTL_TARGET`` or the default."""
    return load_config(project_root).target(name)


__all__ = ["Config", "Target", "BackendSpec", "WorkerSettings", "PushTarget", "load_config", "resolve_target", "embedded_target", "embedded_spec", "CONFIG_FILE", "ROLES"]
