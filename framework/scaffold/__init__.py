"""``pipectl init``: a new project that validates clean, to edit from there.

Two kinds of project: the skeleton (``pipectl init DIR``), the smallest pipeline that shows
every concept once (a source, a phase with a transition policy, a second phase, two entity
kinds with a mapping, completion/trigger/dead-letter topics, SQL transforms), rendered from
text templates with ``string.Template`` (only the project name varies); or a copy of a
shipped example (``pipectl init DIR --example nba_props``, see :mod:`.examples`).

Nothing machine-specific is written: the manifests' ``yaml-language-server`` line points at
``schemas/`` inside the project (relative), where the JSON Schemas of this pipectl version
are written, so editor completion survives a commit and another machine.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from string import Template

from framework.errors import ConfigError
from framework.scaffold.examples import EXAMPLES, PACKAGE_FOLDER, example_files, is_project_file

TEMPLATE_DIR = Path(__file__).resolve().parent / "template"
SCHEMA_DIR = Path(__file__).resolve().parent.parent / "schemas"  # the installed schemas
SCHEMA_FOLDER = "schemas"  # where a project keeps its copy (the modeline points here)
SCHEMAS = {"processors.yaml": "processors.schema.json", "topics.yaml": "topics.schema.json",
           "pipectl.yaml": "config.schema.json"}
_MODELINE = re.compile(r"^# yaml-language-server: \$schema=\S*", re.MULTILINE)
_NAME = re.compile(r"^[a-z][a-z0-9_]*$")


@dataclass(frozen=True)
class InitResult:
    root: Path
    files: tuple[str, ...]
    example: str | None = None


def schema_texts() -> dict[str, str]:
    """``schemas/<file>`` -> text of the JSON Schemas a project's manifests refer to."""
    return {f"{SCHEMA_FOLDER}/{name}": (SCHEMA_DIR / name).read_text(encoding="utf-8") for name in sorted(set(SCHEMAS.values()))}


def modeline(manifest: str) -> str:
    """The editor line of a manifest, relative to the project folder."""
    return f"# yaml-language-server: $schema={SCHEMA_FOLDER}/{SCHEMAS[manifest]}"


def write_schemas(root: str | Path) -> list[str]:
    """(Re)write the JSON Schemas into ``<root>/schemas/`` (``pipectl schema --write``):
    after upgrading pipectl, this refreshes what editors validate against."""
    return _write(Path(root), sorted(schema_texts().items()))


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
    rendered: list[tuple[str, str]] = []  # render everything first: never a half-written project
    for src in sorted(TEMPLATE_DIR.rglob("*")):
        if not src.is_file() or not is_project_file(src.relative_to(TEMPLATE_DIR)):
            continue  # an installed package keeps __pycache__/ beside the template's sample_data.py
        rel = Path(str(src.relative_to(TEMPLATE_DIR)).replace("dot-", "."))
        text = src.read_text(encoding="utf-8")
        if src.suffix == ".tmpl":
            rel = rel.with_suffix("")
            text = Template(text).substitute(project=project, dash=project.replace("_", "-"),
                                             schema_dir=SCHEMA_FOLDER)
        rendered.append((rel.as_posix(), text))
    rendered += sorted(schema_texts().items())
    return InitResult(root, tuple(_write(root, rendered)))


def example_source(name: str) -> Path:
    """Where this installation keeps example ``name``: inside the package
    (``framework/examples/<name>/``, put there by the wheel build), else, for an editable
    install or a run from the repository, the example's source in the checkout."""
    import framework

    if name not in EXAMPLES:
        raise ConfigError(f"unknown example '{name}'", hint=f"choose one of: {', '.join(sorted(EXAMPLES))}")
    package = Path(framework.__file__).resolve().parent
    packaged = package / PACKAGE_FOLDER / name
    if (packaged / "processors.yaml").is_file():
        return packaged
    checkout = package.parent
    source = checkout / EXAMPLES[name].source
    if (checkout / "setup.py").is_file() and (source / "processors.yaml").is_file():
        return source
    raise ConfigError(f"this pipectl installation ({package}) ships no example '{name}'",
                      hint="reinstall pipectl from its repository (a wheel built by `pip wheel` carries the examples)")


def init_example(dest: str | Path, name: str, force: bool = False) -> InitResult:
    """Copy example ``name`` into ``dest``: a complete, runnable project (manifests, SQL,
    Python transforms, sample-data hook) with the schemas and a relative editor line.
    Refuses to overwrite any existing file unless ``force``."""
    root = Path(dest).resolve()
    source = example_source(name)
    files: list[tuple[str, str | bytes]] = []
    for path, rel in example_files(source, EXAMPLES[name]):
        data: str | bytes = path.read_bytes()
        if rel in SCHEMAS:
            data = _MODELINE.sub(lambda _m, r=rel: modeline(r), path.read_text(encoding="utf-8"), count=1)
        files.append((rel, data))
    files += sorted(schema_texts().items())
    clashes = [rel for rel, _ in files if (root / rel).exists()]
    if clashes and not force:
        shown = ", ".join(clashes[:5]) + (f" and {len(clashes) - 5} more" if len(clashes) > 5 else "")
        raise ConfigError(f"{root} already has {shown}", hint="choose an empty folder, or pass --force to overwrite")
    return InitResult(root, tuple(_write(root, files)), example=name)


def _write(root: Path, files: list[tuple[str, str | bytes]]) -> list[str]:
    written = []
    for rel, data in files:
        target = root / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(data, bytes):
            target.write_bytes(data)
        else:
            target.write_text(data, encoding="utf-8")
        written.append(rel)
    return written
