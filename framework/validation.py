"""Library entry point behind `pipectl validate`: load, resolve, run every rule."""
from __future__ import annotations

import os
import traceback
from pathlib import Path
from typing import Any, Callable

from framework.errors import Location, ManifestError, PipectlError
from framework.manifest import PROCESSORS_FILE, load_project
from framework.manifest.diagnostics import Diagnostics


def validate(root: str | Path = ".", check_sql: bool = True, check_files: bool = True) -> Diagnostics:
    """Collect every diagnostic for the project at ``root`` (never raises on bad manifests)."""
    project, diags = load_project(root)
    if project is not None:
        from framework.graph.rules import validate_project

        validate_project(project, diags, check_sql=check_sql and not diags.errors, check_files=check_files)
    check_config_secrets(Path(root), diags)
    return diags


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
