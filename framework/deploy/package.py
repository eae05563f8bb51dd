"""``pipectl package``: build the deployable orchestrator bundle and its deploy commands.

The bundle is a plain folder (Cloud Functions' ``--source``): ``main.py`` (the entry point),
``framework/`` (this installation's source), the project's manifests (``processors.yaml``,
``topics.yaml``, ``pipectl.yaml``, ``pipelines/``, ``templates/``), ``requirements.txt``
(pipectl's own runtime requirements plus the ``[gcp]`` extra) and ``bundle.json`` (what was
packaged, with a content hash so two builds of the same sources are comparable).

One function is deployed per transition that has a completion topic: the same bundle and
entry point, triggered by that topic, with ``--retry`` (a failed delivery is redelivered;
the orchestrator is idempotent) and a dedicated service account. One more, ``pipectl-orch-sweep``
(entry point ``handle_sweep``, one instance, no retry), consumes the sweep topic that the
Cloud Scheduler job managed by ``pipectl apply`` ticks (``sweep:`` in processors.yaml).
"""
from __future__ import annotations

import hashlib
import json
import re
import shutil
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

from framework.errors import ConfigError

PROJECT_FILES = ("processors.yaml", "topics.yaml", "pipectl.yaml")
PROJECT_DIRS = ("pipelines", "templates")
SKIP = shutil.ignore_patterns("__pycache__", "*.pyc", "*.duckdb", "*.sqlite", "*.sqlite-*", ".pipectl")
ENTRY_POINT = "handle_completion"
SWEEP_ENTRY_POINT = "handle_sweep"
FALLBACK_REQUIREMENTS = ("pyyaml>=6.0", "jsonschema>=4.20", "jinja2>=3.1", "networkx>=3.0", "click>=8.1", "duckdb>=1.1",
                         "sqlglot>=25", "filelock>=3.12", "google-cloud-bigquery>=3.20", "google-cloud-pubsub>=2.20",
                         "google-cloud-firestore>=2.15,<3", "google-cloud-scheduler>=2.13",
                         "google-cloud-secret-manager>=2.16", "functions-framework>=3.5")


@dataclass(frozen=True)
class FunctionSpec:
    """One deployed function: the transition it serves and its trigger topic."""

    name: str
    transition: str  # "" for the sweep function
    trigger_topic: str
    reject_topic: str | None
    entry_point: str = "handle_completion"
    retry: bool = True  # the sweep is not retried: the next tick comes within the schedule


@dataclass(frozen=True)
class Bundle:
    path: Path
    content_hash: str
    requirements: tuple[str, ...]
    functions: tuple[FunctionSpec, ...]
    files: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["path"] = str(self.path)
        return data


def requirements() -> tuple[str, ...]:
    """pipectl's runtime requirements plus the ``[gcp]`` extra, from the installed metadata."""
    try:
        reqs = metadata.requires("pipectl") or []
    except metadata.PackageNotFoundError:
        return FALLBACK_REQUIREMENTS
    out = []
    for req in reqs:
        spec, _, marker = req.partition(";")
        marker = marker.strip()
        if not marker or re.search(r"extra\s*==\s*['\"]gcp['\"]", marker):
            out.append(spec.strip())
    return tuple(dict.fromkeys(out))


def function_name(transition_source: str, prefix: str = "pipectl-orch", project: Any = None) -> str:
    """The Cloud Function of a phase: ``<target service prefix><prefix>-<phase>`` (lowercase
    letters, digits, hyphens; at most 63 characters). The target's prefix keeps dev's
    functions apart from prod's in one project (framework.manifest.prefix.service_name)."""
    from framework.manifest.prefix import service_name

    target = project if project is not None else _UNPREFIXED
    try:
        return service_name(target, prefix, transition_source)
    except ValueError as exc:
        raise ConfigError(f"phase '{transition_source}': {exc}",
                          hint="shorten the phase name in processors.yaml or the target's prefix in pipectl.yaml") from exc


class _Unprefixed:
    dataset_prefix = topic_prefix = ""


_UNPREFIXED = _Unprefixed()


def functions_of(project: Any, prefix: str = "pipectl-orch") -> tuple[FunctionSpec, ...]:
    """The functions of a project as its target sees it: names and trigger topics prefixed."""
    specs = []
    for transition in project.transitions():
        if not transition.completion_topic:
            continue
        topic = project.topics.get(transition.completion_topic)
        specs.append(FunctionSpec(function_name(transition.source_phase, prefix, project), transition.name,
                                  transition.completion_topic, topic.dead_letter_topic if topic else None))
    if specs and project.sweep.enabled:
        specs.append(FunctionSpec(function_name("sweep", prefix, project), "", project.sweep.topic, None, SWEEP_ENTRY_POINT, retry=False))
    return tuple(specs)


def hash_tree(root: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file() and p.name != "bundle.json"):
        digest.update(str(path.relative_to(root)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def project_paths(project: Any, root: Path) -> list[str]:
    """The project's own files a deployed bundle needs, relative to its root: manifests,
    template overrides, ``pipelines/``, and every transform's SQL file (its top folder) or
    Python package, wherever they live: the bundle loads the manifests, which checks them."""
    found: set[str] = {n for n in PROJECT_FILES if (root / n).is_file()}
    found |= {n for n in PROJECT_DIRS if (root / n).is_dir()}
    for proc in project.processors.values():
        if proc.transform.sql:
            first = Path(proc.transform.sql).parts[0]
            found.add(first)
        if proc.transform.python:
            top = proc.transform.python.split(":", 1)[0].split(".")[0]
            if (root / top).is_dir():
                found.add(top)
            elif (root / f"{top}.py").is_file():
                found.add(f"{top}.py")
    missing = sorted(p for p in found if not (root / p).exists())
    if missing:
        raise ConfigError(f"{root}: transforms name files that do not exist: {', '.join(missing)}",
                          hint="run `pipectl validate`")
    return sorted(found)


def copy_project(project: Any, root: Path, out: Path) -> list[str]:
    """Copy :func:`project_paths` from ``root`` into ``out``; returns them."""
    paths = project_paths(project, root)
    for rel in paths:
        src = root / rel
        if src.is_dir():
            shutil.copytree(src, out / rel, ignore=SKIP, dirs_exist_ok=True)
        else:
            (out / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, out / rel)
    return paths


def start_bundle(root: Path, out_dir: str | Path, name: str) -> Path:
    """Make ``<out_dir>/<name>/`` afresh (an older build is replaced, never merged into) and
    copy the installed ``framework`` package into it, without the shipped example projects
    (a deployment runs the user's project, not the examples). Shared by the function and the
    worker bundles so both ship the same framework files."""
    out = Path(out_dir)
    out = (out if out.is_absolute() else root / out).resolve() / name
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    import framework

    package = Path(framework.__file__).resolve().parent

    def skip(folder: str, names: list[str]) -> set[str]:
        skipped = set(SKIP(folder, names))
        if Path(folder) == package:
            skipped.add("examples")
        return skipped

    shutil.copytree(package, out / "framework", ignore=skip)
    return out


def build_bundle(project_root: str | Path, out_dir: str | Path = "dist", prefix: str = "pipectl-orch",
                 project: Any = None) -> Bundle:
    """Write ``<out_dir>/pipectl-function/`` (replacing an older build) and describe it.
    ``project``: the project as the deployed target sees it (its prefixes name the functions
    and their trigger topics); default the unprefixed manifests."""
    from framework.project import load

    root = Path(project_root).resolve()
    project = project if project is not None else load(root)  # a broken manifest must never be packaged
    refuse_inline_secrets(root)
    functions = functions_of(project, prefix)
    if not functions:
        raise ConfigError(f"{root}: no phase transition declares a completion_topic, so there is nothing to deploy",
                          hint="set transition.completion_topic in processors.yaml")
    out = start_bundle(root, out_dir, "pipectl-function")
    shutil.copy2(Path(__file__).with_name("main.py"), out / "main.py")
    copy_project(project, root, out)  # manifests, templates, pipelines and every transform's file
    reqs = requirements()
    (out / "requirements.txt").write_text("\n".join(reqs) + "\n")
    content_hash = hash_tree(out)
    files = sum(1 for p in out.rglob("*") if p.is_file())
    bundle = Bundle(out, content_hash, reqs, functions, files + 1, {"project": project.name, "entry_point": ENTRY_POINT})
    (out / "bundle.json").write_text(json.dumps(bundle.to_dict(), indent=2, sort_keys=True) + "\n")
    return bundle


def refuse_inline_secrets(root: Path) -> None:
    """The bundle copies pipectl.yaml: a credential written inline in it would be deployed
    (and readable by anyone who can read the function's source). Refuse, naming the line."""
    from framework.manifest.diagnostics import Diagnostics
    from framework.validation import check_config_secrets

    diags = Diagnostics()
    check_config_secrets(root, diags)
    if diags.warnings:
        where = "; ".join(f"{d.location}: {d.message}" for d in diags.warnings)
        raise ConfigError(f"refusing to package: {where}", hint=diags.warnings[0].hint)


def deploy_commands(bundle: Bundle, gcp_project: str, region: str = "us-central1", service_account: str | None = None,
                    runtime: str = "python311", target: str = "gcp", memory: str = "512Mi") -> list[list[str]]:
    """The ``gcloud functions deploy`` command of each function (as argument lists)."""
    account = service_account or f"pipectl-orchestrator@{gcp_project}.iam.gserviceaccount.com"
    commands = []
    for fn in bundle.functions:
        env = [f"PIPECTL_TARGET={target}", f"GOOGLE_CLOUD_PROJECT={gcp_project}"]
        if fn.reject_topic:
            env.append(f"PIPECTL_REJECT_TOPIC={fn.reject_topic}")
        commands.append([
            "gcloud", "functions", "deploy", fn.name, "--gen2", f"--project={gcp_project}", f"--region={region}",
            f"--runtime={runtime}", f"--source={bundle.path}", f"--entry-point={fn.entry_point}",
            f"--trigger-topic={fn.trigger_topic}", *(["--retry"] if fn.retry else []), f"--service-account={account}",
            f"--trigger-service-account={account}",
            f"--memory={memory}", f"--max-instances={10 if fn.retry else 1}", f"--set-env-vars={','.join(env)}",
        ])
    return commands


def invoker_commands(bundle: Bundle, gcp_project: str, region: str = "us-central1",
                     service_account: str | None = None) -> list[list[str]]:
    """Grant the trigger's service account the invoker role on each function, after every
    deploy. A redeploy that dropped this permission once gave a silent 403 for days
    (FAILURE-MODES 19); re-asserting it on each deploy is idempotent and makes it loud
    (the command fails) instead."""
    account = service_account or f"pipectl-orchestrator@{gcp_project}.iam.gserviceaccount.com"
    return [["gcloud", "functions", "add-invoker-policy-binding", fn.name, f"--project={gcp_project}",
             f"--region={region}", f"--member=serviceAccount:{account}"] for fn in bundle.functions]


def execute(commands: list[list[str]]) -> None:
    """Run the deploy commands one by one; the first failure stops with its output."""
    import subprocess

    from framework.errors import BackendError

    if shutil.which("gcloud") is None:
        raise BackendError("gcloud is not installed", hint="install the Google Cloud CLI, or run the printed commands yourself")
    for cmd in commands:
        done = subprocess.run(cmd, capture_output=True, text=True)  # noqa: S603 - fixed argv, no shell
        if done.returncode != 0:
            raise BackendError(f"`{' '.join(cmd[:4])}` failed (exit {done.returncode}): {done.stderr.strip()[-2000:]}",
                               hint="check the project, region and that the service account exists")
