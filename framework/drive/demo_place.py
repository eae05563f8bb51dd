"""Where ``pipectl demo`` may run, decided before anything is touched.

The demo deletes a project's local state (``.pipectl/``: warehouse, bus, ledger) and fills
it with sample data, so it runs without asking only in an example project pipectl made for
it, recognised by the marker file ``.pipectl-example``:

- the folder is such an example (``./pipectl-demo/`` made by an earlier demo, or the
  pipectl repository root, which *is* the NBA example's source and carries a marker):
  run there;
- the folder is another project (it has ``processors.yaml``): the user's project, so the
  demo only runs after a yes (a prompt, or ``--yes`` for scripts);
- otherwise (an empty folder, any folder without manifests): the demo uses
  ``<folder>/pipectl-demo/``, creating it as a copy of the NBA example, or reusing the one
  an earlier demo made; a ``pipectl-demo/`` pipectl did not make is refused.

A reused copy that nobody edited is refreshed from the installed example (so an upgrade of
pipectl, or an edit of the example in a checkout, reaches it); one with local edits is kept
as it is, and said so.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

from framework.errors import ConfigError

MARKER = ".pipectl-example"
DEMO_FOLDER = "pipectl-demo"
DEMO_EXAMPLE = "nba_props"


@dataclass(frozen=True)
class DemoPlace:
    """``kind``: ``example`` (a marked example: run), ``project`` (a user's project: ask
    first), ``create`` (make ``root`` as a new example copy) or ``reuse`` (an earlier copy)."""

    root: Path
    kind: str
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def needs_consent(self) -> bool:
        return self.kind == "project"


def read_marker(folder: Path) -> dict | None:
    """The marker of an example folder pipectl made, or None (not an example copy)."""
    path = folder / MARKER
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise ConfigError(f"{path}: not valid JSON ({exc})", hint=f"delete {path} and {folder} if pipectl made it") from exc
    if not isinstance(data, dict) or "example" not in data:
        raise ConfigError(f"{path}: not a pipectl example marker (no 'example' key)",
                          hint=f"delete {path}; pipectl writes it when it copies an example for the demo")
    return data


def choose(folder: str | Path) -> DemoPlace:
    """Decide where the demo runs for a start ``folder``; raises before touching anything."""
    start = Path(folder).resolve()
    if read_marker(start) is not None:
        return DemoPlace(start, "example")
    if (start / "processors.yaml").is_file():
        return DemoPlace(start, "project")
    demo = start / DEMO_FOLDER
    if not demo.exists():
        return DemoPlace(demo, "create")
    marker = read_marker(demo) if demo.is_dir() else None
    if marker is None:
        raise ConfigError(f"{demo} exists and was not made by `pipectl demo` (no {MARKER} in it); it is left alone",
                          hint="run the demo in another folder, or move that folder away")
    return DemoPlace(demo, "reuse", _edited_note(demo, marker))


def prepare(place: DemoPlace, version: str) -> list[str]:
    """Create or refresh the demo's example copy; returns what was done, for the user."""
    from framework.scaffold import init_example

    if place.kind == "create":
        result = init_example(place.root, DEMO_EXAMPLE)
        _write_marker(place.root, result.files, version)
        return [f"created {place.root} (a copy of the {DEMO_EXAMPLE} example, made for the demo)"]
    if place.kind != "reuse":
        return []
    if place.notes:
        return list(place.notes)
    old = read_marker(place.root) or {}
    for rel in old.get("files", {}):
        target = place.root / rel
        if target.is_file():
            target.unlink()
    result = init_example(place.root, DEMO_EXAMPLE, force=True)
    _write_marker(place.root, result.files, version)
    return [f"reusing {place.root} (refreshed from the installed {DEMO_EXAMPLE} example)"]


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _write_marker(root: Path, files: tuple[str, ...], version: str) -> None:
    data = {"example": DEMO_EXAMPLE, "made_by": "pipectl demo", "pipectl_version": version,
            "note": "pipectl demo made this folder and may reset its .pipectl/; delete this file to make it yours",
            "files": {rel: _digest(root / rel) for rel in files}}
    (root / MARKER).write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def _edited_note(root: Path, marker: dict) -> tuple[str, ...]:
    """A note when files of an earlier copy were edited or deleted since pipectl wrote them."""
    files = marker.get("files")
    if not isinstance(files, dict):
        return ()
    edited = sorted(rel for rel, digest in files.items() if not (root / rel).is_file() or _digest(root / rel) != digest)
    if not edited:
        return ()
    shown = ", ".join(edited[:3]) + (f" and {len(edited) - 3} more" if len(edited) > 3 else "")
    return (f"reusing {root} with your edits ({shown}); delete the folder for a fresh copy",)
