"""Library entry point behind `pipectl validate`: load, resolve, run every rule."""
from __future__ import annotations

from pathlib import Path

from framework.manifest import load_project
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
    from framework.runtime.secrets import inline_secrets

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
