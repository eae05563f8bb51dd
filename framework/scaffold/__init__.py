"""``pipectl init``: a new project that validates clean, to edit from there.

The skeleton is the smallest pipeline that shows every concept once: a source (the landing
zone), a first phase with a transition policy, a second phase that reads it, two entity
kinds with a mapping, completion/trigger/dead-letter topics, SQL transforms using the
template functions. It is rendered from text templates with ``string.Template`` (only the
project name varies), then validated so a broken skeleton can never be written silently.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from string import Template

from framework.errors import ConfigError

TEMPLATE_DIR = Path(__file__).resolve().parent / "template"
SCHEMA_DIR = Path(__file__).resolve().parent.parent / "schemas"  # editors read the installed schemas
_NAME = re.compile(r"^[a-z][a-z0-9_]*$")


@dataclass(frozen=True)
class InitResult:
    root: Path
    files: tuple[str, ...]


def init_project(dest: str | Path, name: str | None = None, force: bool = False) -> InitResult:
    """Write the skeleton into ``dest`` (created if missing). Refuses to overwrite existing
    manifests unless ``force``: losing a user's processors.yaml is not recoverable."""
    root = Path(dest).resolve()
    project = name or re.sub(r"[^a-z0-9_]", "_", root.name.lower()).strip("_") or "pipeline"
    if not _NAME.match(project):
        raise ConfigError(f"project name '{project}' is not snake_case", hint="pass --name my_pipeline")
    existing = [n for n in ("processors.yaml", "topics.yaml") if (root / n).exists()]
    if existing and not force:
        raise ConfigError(f"{root} already has {', '.join(existing)}", hint="choose an empty folder, or pass --force to overwrite")
    rendered: list[tuple[Path, str]] = []  # render everything first: never a half-written project
    for src in sorted(TEMPLATE_DIR.rglob("*")):
        if not src.is_file():
            continue
        rel = Path(str(src.relative_to(TEMPLATE_DIR)).replace("dot-", "."))
        text = src.read_text(encoding="utf-8")
        if src.suffix == ".tmpl":
            rel = rel.with_suffix("")
            text = Template(text).substitute(project=project, dash=project.replace("_", "-"), schema_dir=SCHEMA_DIR.as_posix())
        rendered.append((rel, text))
    written = []
    for rel, text in rendered:
        target = root / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
        written.append(rel.as_posix())
    return InitResult(root, tuple(written))
