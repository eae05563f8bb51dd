"""Load YAML manifests keeping the file, line and column of every node.

PyYAML's composer (libyaml when available) gives nodes with marks; we convert them to plain
Python data and record each node's location in a side table keyed by its JSON path, e.g.
``("processors", 3, "inputs", 0)``. Plain data keeps JSON Schema validation and the resolver
simple; the side table lets every diagnostic point at the exact line.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from framework.errors import LineIndex, Location
from framework.manifest.diagnostics import Diagnostics, did_you_mean

try:  # libyaml is ~10x faster; fall back to the pure-Python loader
    from yaml import CSafeLoader as _Loader
except ImportError:  # pragma: no cover - depends on the PyYAML build
    from yaml import SafeLoader as _Loader  # type: ignore[assignment]

SCHEMA_DIR = Path(__file__).resolve().parent.parent / "schemas"

Path_ = tuple  # a JSON path: tuple of str | int


@dataclass
class LoadedFile:
    """One manifest file: its data and the location of each node by JSON path.

    ``loc()`` returns lazy Locations: line/column are computed (by composing the YAML
    with PyYAML) only if something is printed, so clean manifests load at parser speed.
    """

    path: str
    data: Any
    index: LineIndex | None = None

    def loc(self, *path: Any) -> Location:
        return Location(self.path, 0, 0, self.index, path)


def _convert(node: yaml.Node, path: tuple, locs: dict | None, file: str, diags: Diagnostics | None) -> Any:
    """PyYAML node -> plain data, recording (line, column) of every node by JSON path."""
    mark = node.start_mark
    if locs is not None:
        locs[path] = (mark.line + 1, mark.column + 1)
    if isinstance(node, yaml.MappingNode):
        out: dict = {}
        for key_node, value_node in node.value:
            key = key_node.value if isinstance(key_node, yaml.ScalarNode) else str(key_node.value)
            km = key_node.start_mark
            if diags is not None and key == "<<":
                diags.error("yaml-merge", "YAML merge keys ('<<') are not supported", Location(file, km.line + 1, km.column + 1), "write the keys out")
                continue
            if diags is not None and key in out:
                diags.error("duplicate-key", f"duplicate key '{key}' in mapping", Location(file, km.line + 1, km.column + 1), "remove one of them; YAML would silently keep the last")
            out[key] = _convert(value_node, path + (key,), locs, file, diags)
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_convert(child, path + (i,), locs, file, diags) for i, child in enumerate(node.value)]
    return _construct_scalar(node)


_scalar_constructor = yaml.SafeLoader("")  # only used to resolve plain scalars to Python values


def _construct_scalar(node: yaml.ScalarNode) -> Any:
    return _scalar_constructor.construct_object(node, deep=True)


def _position_table(text: str, display: str):
    def build() -> dict:
        table: dict = {}
        node = yaml.compose(text, Loader=_Loader)
        if node is not None:
            _convert(node, (), table, display, None)
        return table

    return build


def _fast_parse(text: str) -> tuple[Any, str | None]:
    """Parse with the Rust parser (a core dependency; 10x faster than PyYAML's C binding
    for large manifests). Returns ``(data, None)``, ``(None, error)``, or ``(_NO_FAST,
    None)`` when it is not installed.

    The data of a manifest always comes from one parser (YAML 1.2 semantics: ``yes`` and
    ``on`` are strings); PyYAML is used only to locate nodes and problems."""
    try:
        import yaml_rs
    except ImportError:  # a broken install: fall back to PyYAML for everything
        return _NO_FAST, None
    try:
        return yaml_rs.loads(text, parse_datetime=False), None
    except yaml_rs.YAMLDecodeError as exc:
        return None, str(exc)


_NO_FAST = object()
_LINE_COL = re.compile(r"line (\d+),? column (\d+)")


def load_yaml(path: Path, display: str, diags: Diagnostics) -> LoadedFile | None:
    """Parse one YAML file. Syntax errors become located diagnostics, not exceptions."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        diags.error("missing-file", f"{path.name} not found", Location(display), f"create {display} (see README: 'Manifests')")
        return None
    data, fast_error = _fast_parse(text)
    if fast_error is None and data is not _NO_FAST and data is not None:
        return LoadedFile(display, data, LineIndex(_position_table(text, display)))
    before = len(diags.items)
    try:
        node = yaml.compose(text, Loader=_Loader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        loc = Location(display, mark.line + 1, mark.column + 1) if mark else Location(display)
        diags.error("yaml-syntax", f"YAML syntax error: {exc.problem or exc}", loc, "fix the indentation or quoting at this position")
        return None
    if node is None:
        diags.error("empty-file", f"{path.name} is empty", Location(display, 1, 1), "add 'version: 1' and the required sections")
        return None
    table: dict = {}
    converted = _convert(node, (), table, display, diags)
    if fast_error is not None:
        if len(diags.items) == before:  # PyYAML accepted what the YAML 1.2 parser refused
            found = _LINE_COL.search(fast_error)
            loc = Location(display, int(found.group(1)), int(found.group(2))) if found else Location(display, 1, 1)
            diags.error("yaml-syntax", f"YAML error: {fast_error}", loc, "fix the YAML at this position")
        return None
    return LoadedFile(display, converted, LineIndex(lambda: table))


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
    if err.validator == "enum":
        return f"use one of: {', '.join(map(str, err.validator_value))}"
    return None
