"""Library entry point behind `pipectl validate`: load, resolve, run every rule.

A repeated ``pipectl validate`` of an unchanged project (a pre-commit hook, an editor on
save, CI re-runs) replays the previous run's diagnostics instead of checking again: the
record (``.pipectl/cache/validate.json``) names every file the run depended on with the
hash of its content (or that it must not exist), and the key covers pipectl's own code,
the sqlglot, Jinja and Python versions, the options and the working directory (paths in
diagnostics are relative to it). Contents are hashed, never trusted by modification time:
an edit in the same clock tick still misses. A run that depended on something outside the
project (a Python transform found on ``sys.path``) is not recorded. ``PIPECTL_NO_CACHE=1``
disables it; the library function replays only when asked (``replay=True``, the CLI).

When only transform files changed, the run is not replayed but patched: the record also
says which diagnostics each processor's transform check wrote, so only the processors
reading the changed files are rendered, parsed and checked again (:func:`_recheck`), and the
output is what a full run prints.
"""
from __future__ import annotations

import logging
import os
import traceback
from pathlib import Path
from typing import Any, Callable

from framework.errors import Location, ManifestError, PipectlError
from framework.manifest import PROCESSORS_FILE, load_project
from framework.manifest.diagnostics import Diagnostics

log = logging.getLogger(__name__)


def validate(root: str | Path = ".", check_sql: bool = True, check_files: bool = True, replay: bool = False) -> Diagnostics:
    """Collect every diagnostic for the project at ``root`` (never raises on bad manifests).

    ``replay``: return the recorded diagnostics of the last run when nothing it depended
    on changed, and check again only the processors whose transform files changed when
    nothing else did (see the module docstring)."""
    record = None
    if replay and not os.environ.get("PIPECTL_NO_CACHE"):
        from framework.validation.replay import Replay

        record = Replay(Path(root), check_sql, check_files)
        hit = record.lookup()
        if hit is not None:
            return hit
        if record.changed is not None:
            try:
                patched = _recheck(Path(root), record)
            except Exception as exc:  # noqa: BLE001 - never worse than a full run, which reports it located
                log.warning("re-checking the edited transforms failed (%s: %s): checking everything", type(exc).__name__, exc)
                patched = None
            if patched is not None:
                return patched
    workers = _cold_workers(Path(root)) if check_sql else 0
    spans = None
    project, diags = load_project(root)
    if project is not None:
        from framework.graph.rules import validate_project
        from framework.sql.parsing import frozen_heap

        sql = check_sql and not diags.errors  # a manifest that loads with errors: no SQL checks
        with frozen_heap():  # the model lives until the end: no full collection scans it again
            validate_project(project, diags, check_sql=False, check_files=check_files)
            if sql:  # the processors the rules found unsound are skipped (framework.graph.soundness)
                spans = _check_sql(project, diags, workers)
    check_config_secrets(Path(root), diags)
    if record is not None:
        record.store(project, diags, spans)
    return diags


def _check_sql(project: Any, diags: Diagnostics, workers: int) -> Any:
    """framework.graph.rules' SQL step, recording where each transform check wrote."""
    from framework.graph.soundness import guarded, sound_processors
    from framework.sql.checks import Spans, check_rendered_sql

    spans = Spans()
    where = Location(project.files[0] if project.files else PROCESSORS_FILE, 1, 1)
    # only processors whose references resolve: the rules report the others
    guarded(diags, "the SQL checks", where, check_rendered_sql, project, diags, only=sound_processors(project), spans=spans,
            workers=workers)
    return spans


def _recheck(root: Path, record: Any) -> Diagnostics | None:
    """Only transform files changed since the recorded run: check those processors' SQL
    again and keep the rest of the recorded result. None when the project no longer loads
    as recorded (then everything is checked)."""
    if record.record["spans"]["start"] is None:  # the recorded run checked no SQL: nothing to redo
        return record.patch({})
    project, _ = load_project(root)  # its diagnostics are the recorded ones: the manifests did not change
    if project is None or any(name not in project.processors for name in record.changed):
        return None
    from framework.sql.checks import recheck_transforms

    checked = set(record.record["spans"]["order"])  # the rules left the others unchecked
    return record.patch(recheck_transforms(project, [name for name in record.changed if name in checked]))


# A project whose processors.yaml is at least this large (about 400 processors,
# framework.sql.parsing.POOL_MIN_JOBS) is checked on forked workers when it has no parse cache.
LARGE_PROJECT_BYTES = 256 * 1024


def _cold_workers(root: Path) -> int:
    """How many workers check the transforms of a large project with no parse cache yet (a
    first run, a new sqlglot), where every statement will be parsed: forked once the project
    is loaded, each renders, parses and reports a share (framework.sql.check_workers). 0 with
    a cache: most statements are found in it (after an edit to processors.yaml, nothing is
    parsed), and the checks fork parse workers only if many still miss
    (framework.sql.parsing.iter_parse)."""
    try:
        large = (root / PROCESSORS_FILE).stat().st_size >= LARGE_PROJECT_BYTES
    except OSError:
        return 0
    if not large:
        return 0
    from framework.sql.check_workers import workers_for_cold_run
    from framework.sql.parse_cache import cache_path

    if not os.environ.get("PIPECTL_NO_CACHE") and cache_path(root).is_file():
        return 0
    return workers_for_cold_run()


def check_config_secrets(root: Path, diags: Diagnostics) -> None:
    """Warn on a credential written inline in pipectl.yaml (a webhook URL, an SMTP password):
    ``pipectl package`` copies the file into the function bundle, so it would ship there."""
    from framework.config import CONFIG_FILE
    from framework.manifest.loader import load_yaml
    from framework.alerts.secrets import inline_secrets

    path = root / CONFIG_FILE
    if not path.is_file():
        return
    found = Diagnostics()
    loaded = load_yaml(path, CONFIG_FILE, found)
    if loaded is None or not isinstance(loaded.data, dict) or not isinstance(loaded.data.get("alerts"), dict):
        return  # shape errors are reported by the commands that read the file
    for json_path, message in inline_secrets(loaded.data["alerts"]):
        diags.warning("inline-secret", message, loaded.loc(*json_path),
                      "write {env: VAR} or {secret: projects/P/secrets/S/versions/latest} instead (docs/runtime.md#secrets)")


def validate_or_report(fn: Callable[..., Diagnostics], root: str | Path, **kwargs: Any) -> Diagnostics:
    """``fn(root, **kwargs)``, but an unexpected exception becomes one ``internal-error``
    diagnostic, so ``--format junit|sarif|json`` still prints a valid report a CI job can
    upload (an empty stdout would hide the failure). With ``PIPECTL_DEBUG=1`` the traceback goes to
    stderr."""
    diags = Diagnostics()
    where = Location(str(Path(root) / PROCESSORS_FILE), 1, 1)
    try:
        return fn(root, **kwargs)
    except ManifestError as exc:
        diags.extend(exc.diagnostics)
    except PipectlError as exc:
        diags.error("error", exc.message, exc.location or where, exc.hint)
    except Exception as exc:  # noqa: BLE001 - turned into a reported error, never swallowed
        if os.environ.get("PIPECTL_DEBUG"):
            traceback.print_exc()
        diags.error("internal-error", f"pipectl failed while validating: {type(exc).__name__}: {exc}",
                    where, "a pipectl bug, not yours: please report it with the manifests (PIPECTL_DEBUG=1 shows the traceback)")
    return diags
