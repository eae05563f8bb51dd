"""Load YAML manifests keeping the file, line and column of every node.

One reader (:mod:`framework.manifest.yaml12`) turns a file into plain data *and* a side
table of each node's location keyed by its JSON path, e.g. ``("processors", 3, "inputs",
0)``, in the same pass, so meaning and location cannot disagree. Plain data keeps JSON
Schema validation and the resolver simple; the side table lets every diagnostic point at
the exact line. Reading never raises on bad input: every problem becomes a located
diagnostic (see docs/validate.md, "What the loader refuses").
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from framework.errors import LineIndex, Location
from framework.manifest import yaml12
from framework.manifest.diagnostics import Diagnostics, did_you_mean

SCHEMA_DIR = Path(__file__).resolve().parent.parent / "schemas"

Path_ = tuple  # a JSON path: tuple of str | int


@dataclass
class LoadedFile:
    """One manifest file: its data and the location of each node by JSON path."""

    path: str
    data: Any
    index: LineIndex | None = None

    def loc(self, *path: Any) -> Location:
        return Location(self.path, 0, 0, self.index, path)


def read_text(path: Path, display: str, diags: Diagnostics) -> str | None:
    """The file's text, or ``None`` after a located error (missing, a directory, unreadable,
    too large, not UTF-8, characters YAML forbids)."""
    def error(code: str, message: str, line: int, column: int, hint: str | None) -> None:
        diags.error(code, message, Location(display, line, column), hint)

    try:
        if path.stat().st_size > yaml12.MAX_BYTES:
            error("file-size", f"{path.name} is larger than {yaml12.MAX_BYTES // 2**20} MB", 1, 1, "split the project or check the file")
            return None
        raw = path.read_bytes()
    except FileNotFoundError:
        diags.error("missing-file", f"{path.name} not found", Location(display), f"create {display} (see README: 'Manifests')")
        return None
    except IsADirectoryError:
        diags.error("not-a-file", f"{display} is a directory, not a file", Location(display), f"remove or rename the directory {display}")
        return None
    except PermissionError:
        diags.error("unreadable", f"{display} cannot be read: permission denied", Location(display), f"chmod u+r {display}")
        return None
    except OSError as exc:
        diags.error("unreadable", f"{display} cannot be read: {exc.strerror or exc}", Location(display), "check the file")
        return None
    text = yaml12.decode(raw, error)
    if text is None or yaml12.forbidden_characters(text, error):
        return None
    return text


def load_yaml(path: Path, display: str, diags: Diagnostics) -> LoadedFile | None:
    """Parse one YAML file. Every problem becomes a located diagnostic, never an exception."""
    text = read_text(path, display, diags)
    if text is None:
        return None

    def error(code: str, message: str, line: int, column: int, hint: str | None) -> None:
        diags.error(code, message, Location(display, line, column), hint)

    # no location table (most of a loaded manifest's memory, one entry per node): rebuilt
    # from the text if a location is printed
    parsed = yaml12.parse(text, error, locations=False)
    if parsed is None:
        return None
    data = parsed[0]
    if data is None:
        diags.error("empty-file", f"{path.name} is empty", Location(display, 1, 1), "add 'version: 1' and the required sections")
        return None
    return LoadedFile(display, data, LineIndex(lambda: _locations(text)))


def _locations(text: str) -> dict:
    """The location table of a file that parsed once already: the same text parses the
    same way (its problems were reported by the first parse), so only the table is kept.
    Locations of a clean manifest are never printed, so most runs never rebuild it."""
    parsed = yaml12.parse(text, lambda *args: None)
    return parsed[1] if parsed is not None else {}


def check_entity_references(pf: LoadedFile, diags: Diagnostics) -> None:
    """Unknown entity kinds, read from the raw data when the shape is too broken to resolve.

    The graph rules report them on a resolved model; this makes ``entity: players`` a located
    error *whatever else is wrong* (a schema error elsewhere stops resolving). Only well-typed
    spots are looked at: the schema check has reported the rest."""
    data = pf.data if isinstance(pf.data, dict) else {}
    kinds = data.get("entity_kinds")
    if not isinstance(kinds, dict):
        return
    spots = [("processors", "processor", "entity"), ("sources", "source", "entity")]
    for section, what, field in spots:
        items = data.get(section)
        for i, item in enumerate(items if isinstance(items, list) else []):
            kind = item.get(field) if isinstance(item, dict) else None
            if isinstance(kind, str) and kind not in kinds:
                name = item.get("name")
                label = f"{what} '{name}'" if isinstance(name, str) else f"{section}[{i}]"
                diags.error("unknown-entity-kind", f"{label} uses unknown entity kind '{kind}'", pf.loc(section, i, field),
                            did_you_mean(kind, [k for k in kinds if isinstance(k, str)]) or "declare it under entity_kinds")
    mappings = data.get("entity_mappings")
    for i, m in enumerate(mappings if isinstance(mappings, list) else []):
        for end in ("from", "to"):
            kind = m.get(end) if isinstance(m, dict) else None
            if isinstance(kind, str) and kind not in kinds:
                diags.error("unknown-entity-kind", f"entity mapping uses unknown entity kind '{kind}'", pf.loc("entity_mappings", i, end),
                            did_you_mean(kind, [k for k in kinds if isinstance(k, str)]) or "declare it under entity_kinds")


@lru_cache(maxsize=None)
def load_schema(name: str) -> dict:
    return json.loads((SCHEMA_DIR / f"{name}.schema.json").read_text(encoding="utf-8"))


@lru_cache(maxsize=None)
def _validator(name: str):
    import jsonschema

    schema = load_schema(name)
    return jsonschema.Draft202012Validator(schema)


@lru_cache(maxsize=None)
def _fast_validator(name: str):
    try:
        import jsonschema_rs
    except ImportError:  # optional accelerator; the Python validator gives the messages
        return None
    return jsonschema_rs.validator_for(load_schema(name))


def check_schema(loaded: LoadedFile, schema_name: str, diags: Diagnostics) -> bool:
    """JSON Schema shape check; each violation becomes a diagnostic at the offending node.

    A Rust validator answers "valid?" in milliseconds; only invalid documents go through
    the Python validator, whose errors carry paths and best-match explanations."""
    fast = _fast_validator(schema_name)
    if fast is not None and fast.is_valid(loaded.data):
        return True
    validator = _validator(schema_name)
    ok = True
    for err in validator.iter_errors(loaded.data):
        ok = False
        best = _best_error(err)
        path = tuple(best.absolute_path)
        if best.validator == "additionalProperties" and isinstance(best.instance, dict):
            allowed = best.schema.get("properties", {})
            for key in sorted(set(best.instance) - set(allowed)):
                where = ".".join(str(p) for p in path) or "top level"
                hint = did_you_mean(key, allowed) or f"allowed keys: {', '.join(sorted(allowed))}"
                diags.error("schema", f"{where}: unknown key '{key}'", loaded.loc(*path, key), hint)
            continue
        diags.error("schema", _schema_message(best), loaded.loc(*path), _schema_hint(best))
    return ok


def _best_error(err):
    import jsonschema.exceptions

    if err.context:
        return jsonschema.exceptions.best_match(err.context)
    return err


def _schema_message(err) -> str:
    where = ".".join(str(p) for p in err.absolute_path) or "top level"
    return f"{where}: {err.message}"


def _schema_hint(err) -> str | None:
    if _yaml11_boolean(err):
        return (f"YAML 1.2 reads '{err.instance}' as text, not a boolean (only true and false are booleans); "
                "write true or false")
    if err.validator == "enum":
        return f"use one of: {', '.join(map(str, err.validator_value))}"
    return None


def _yaml11_boolean(err) -> bool:
    """A YAML 1.1 boolean word (yes/no/on/off) where a boolean was expected."""
    wanted = err.validator_value if err.validator == "type" else None
    wants_bool = wanted == "boolean" or (isinstance(wanted, list) and "boolean" in wanted)
    return wants_bool and isinstance(err.instance, str) and err.instance.lower() in yaml12.YAML11_BOOLEANS
