"""``pipectl package --worker``: the source bundle of the worker service and its deploy commands.

The worker is the processors' runtime on Cloud Run (``execution: remote``, docs/gcp.md). Its
bundle is a folder ``gcloud run deploy --source`` builds with the Dockerfile in it (or with
buildpacks, from the Procfile, when the Dockerfile is removed):

- ``framework/``: this installation's source (the generic worker, runner, orchestrator);
- the project: ``processors.yaml``, ``topics.yaml``, ``pipectl.yaml``, ``pipelines/``,
  ``templates/`` and every file or folder a transform names (SQL files, the top package of
  a Python transform);
- ``requirements.txt``: pipectl's runtime requirements, the ``gcp`` and ``ui`` (Starlette,
  uvicorn: the worker's server) extras, **pinned** to the versions installed here with their whole dependency
  closure, so the service runs exactly what was tested;
- ``Dockerfile``, ``Procfile``, ``.dockerignore`` and ``bundle.json`` (what was packaged,
  with a content hash: two builds of the same sources compare equal).

It reuses the function bundle's pieces (:mod:`framework.deploy.package`): the copy rules, the
refusal of inline secrets in pipectl.yaml and the content hash.
"""
from __future__ import annotations

import json
import sys
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

from framework.config import Target
from framework.config.worker import Sizing, WorkerSettings, check_remote, describe
from framework.deploy.package import copy_project, hash_tree, refuse_inline_secrets, start_bundle

BUNDLE_DIR = "pipectl-worker"
APP_DIR = "/app"
# the Google Cloud clients, and the HTTP server: the worker serves with Starlette on uvicorn,
# the `ui` extra's two packages (a `worker` extra, when the installation declares one, too)
EXTRAS = ("gcp", "worker", "ui")
PYTHON_IMAGE = "python:{major}.{minor}-slim"  # the Python the requirements were pinned with


@dataclass(frozen=True)
class WorkerBundle:
    path: Path
    content_hash: str
    requirements: tuple[str, ...]
    project: str
    project_paths: tuple[str, ...]
    sizing: dict[str, Any]
    files: int = 0
    unpinned: tuple[str, ...] = ()
    notes: tuple[str, ...] = field(default_factory=tuple)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["path"] = str(self.path)
        return data


# ---------------------------------------------------------------------- requirements
def pinned_requirements(extras: tuple[str, ...] = EXTRAS) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(pins, unpinned): ``name==version`` for pipectl's requirements and ``extras`` and
    everything they pull in, as installed here; names not installed are kept as declared."""
    from packaging.markers import default_environment
    from packaging.requirements import InvalidRequirement, Requirement

    try:
        declared = metadata.requires("pipectl") or []
    except metadata.PackageNotFoundError:
        from framework.deploy.package import FALLBACK_REQUIREMENTS

        declared = list(FALLBACK_REQUIREMENTS)
    env = default_environment()
    roots = []
    for text in declared:
        req = Requirement(text)
        if req.marker is None or any(req.marker.evaluate({**env, "extra": e}) for e in extras):
            roots.append(req)
    pins: dict[str, str] = {}
    unpinned: list[str] = []
    todo = list(roots)
    while todo:
        req = todo.pop()
        key = req.name.lower().replace("_", "-")
        if key in pins:
            continue
        try:
            dist = metadata.distribution(req.name)
        except metadata.PackageNotFoundError:
            unpinned.append(str(req))
            pins[key] = str(req)
            continue
        extra = f"[{','.join(sorted(req.extras))}]" if req.extras else ""
        pins[key] = f"{dist.metadata['Name']}{extra}=={dist.version}"
        for text in dist.requires or []:
            try:
                child = Requirement(text)
            except InvalidRequirement:
                continue
            wanted = req.extras or {""}
            if child.marker is None or any(child.marker.evaluate({**env, "extra": e}) for e in wanted):
                todo.append(child)
    return tuple(sorted(pins.values(), key=str.lower)), tuple(sorted(unpinned))


# ---------------------------------------------------------------------- the bundle
DOCKERFILE = """\
# Built by `pipectl package --worker`; `gcloud run deploy --source` builds it with Cloud Build.
FROM {image}
ENV PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1 PIP_NO_CACHE_DIR=1 PIPECTL_PROJECT_DIR={app}
WORKDIR {app}
COPY requirements.txt .
RUN pip install --no-deps -r requirements.txt
COPY . .
# PORT is set by Cloud Run; the target comes from PIPECTL_TARGET (set by the deploy command)
CMD exec python -m framework.worker --port ${{PORT:-8080}}
"""
PROCFILE = "web: python -m framework.worker --port $PORT\n"
DOCKERIGNORE = "**/__pycache__\n**/*.pyc\n.pipectl\n*.duckdb\n*.sqlite\n"


def build_worker_bundle(project_root: str | Path, target: Target, out_dir: str | Path = "dist") -> WorkerBundle:
    """Write ``<out_dir>/pipectl-worker/`` (replacing an older build) and describe it."""
    from framework.project import load

    root = Path(project_root).resolve()
    project = load(root)  # a broken manifest is never packaged
    refuse_inline_secrets(root)
    worker = target.worker_settings()
    size = check_remote(project, target.name, worker)
    out = start_bundle(root, out_dir, BUNDLE_DIR)
    paths = copy_project(project, root, out)
    reqs, unpinned = pinned_requirements()
    (out / "requirements.txt").write_text("# pinned by `pipectl package --worker` from the installed versions\n"
                                          + "\n".join(reqs) + "\n")
    image = PYTHON_IMAGE.format(major=sys.version_info.major, minor=sys.version_info.minor)
    (out / "Dockerfile").write_text(DOCKERFILE.format(image=image, app=APP_DIR))
    (out / "Procfile").write_text(PROCFILE)
    (out / ".dockerignore").write_text(DOCKERIGNORE)
    notes = _notes(size, unpinned)
    files = sum(1 for p in out.rglob("*") if p.is_file()) + 1
    bundle = WorkerBundle(out, hash_tree(out), reqs, project.name, tuple(paths), size.to_dict(), files, unpinned, notes)
    (out / "bundle.json").write_text(json.dumps(bundle.to_dict(), indent=2, sort_keys=True) + "\n")
    return bundle


def _notes(size: Sizing, unpinned: tuple[str, ...]) -> tuple[str, ...]:
    notes = []
    over = sorted((phase, total) for phase, total in size.phase_totals.items() if total > size.request_timeout)
    if over:
        notes.append(f"phase trigger(s) whose processors' timeouts add up beyond the {size.request_timeout}s request "
                     f"timeout: {describe(over)}; a trigger request runs them one after another, so if they ever take "
                     f"that long Cloud Run cuts the request (lower their `timeout:` or split them with `fanout:`)")
    if unpinned:
        notes.append(f"not installed here, so not pinned: {', '.join(unpinned)}")
    return tuple(notes)


def worker_deploy_commands(bundle: WorkerBundle, worker: WorkerSettings, gcp_project: str, target: str = "gcp",
                           region: str | None = None, service_account: str | None = None) -> list[list[str]]:
    """``gcloud run deploy`` of the worker, then the invoker grant of the push identity
    (re-asserted on every deploy: a dropped invoker permission is a silent 403, FM 19)."""
    account = service_account or worker.service_account or f"pipectl-worker@{gcp_project}.iam.gserviceaccount.com"
    region = region or worker.region
    timeout = int(bundle.sizing["request_timeout"])
    env = [f"PIPECTL_TARGET={target}", f"GOOGLE_CLOUD_PROJECT={gcp_project}", f"PIPECTL_PROJECT_DIR={APP_DIR}"]
    deploy = ["gcloud", "run", "deploy", worker.service, f"--project={gcp_project}", f"--region={region}",
              f"--source={bundle.path}", f"--service-account={account}", "--no-allow-unauthenticated",
              f"--concurrency={worker.concurrency}", f"--timeout={timeout}", f"--max-instances={worker.max_instances}",
              f"--min-instances={worker.min_instances}", f"--memory={worker.memory}", f"--cpu={worker.cpu}",
              f"--set-env-vars={','.join(env)}"]
    grant = ["gcloud", "run", "services", "add-iam-policy-binding", worker.service, f"--project={gcp_project}",
             f"--region={region}", f"--member=serviceAccount:{account}", "--role=roles/run.invoker"]
    url = ["gcloud", "run", "services", "describe", worker.service, f"--project={gcp_project}", f"--region={region}",
           "--format=value(status.url)"]
    return [deploy, grant, url]


__all__ = ["WorkerBundle", "build_worker_bundle", "worker_deploy_commands", "pinned_requirements"]
