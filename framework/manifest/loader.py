"""Load YAML manifests keeping the file, line and column of every node.

PyYAML's composer (libyaml when available) gives nodes with marks; we convert them to plain
Python data and record each node's location in a side table keyed by its JSON path, e.g.
``("processors", 3, "inputs", 0)``. Plain data keeps JSON Schema validation and the resolver
simple; the side table lets every diagnostic point at the exact line.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from framework.errors import Location
from framework.manifest.diagnostics import Diagnostics, did_you_mean

try:  # libyaml is ~10x faster; fall back to the pure-Python loader
    from yaml import CSafeLoader as _Loader
except ImportError:  # pragma: no cover - depends on the PyYAML build
    from yaml import SafeLoader as _Loader  # type: ignore[assignment]

SCHEMA_DIR = Path(__file__).resolve().parent.parent / "schemas"

Path_ = tuple  # a JSON path: tuple of str | int


@dataclass
class LoadedFile:
    """One manifest file: its data and the location of each node by JSON path."""

    path: str
    data: Any
    locations: dict[tuple, Location] = field(default_factory=dict)

    def loc(self, *path: Any) -> Location:
        """Location of the node at ``path``, or of its nearest located ancestor."""
        p = tuple(path)
        while p:
            found = self.locations.get(p)
            if found is not None:
                return found
            p = p[:-1]
        return self.locations.get((), Location(self.path, 1, 1))


def _convert(node: yaml.Node, path: tuple, locs: dict, file: str, diags: Diagnostics) -> Any:
    mark = node.start_mark
    locs[path] = Location(file, mark.line + 1, mark.column + 1)
    if isinstance(node, yaml.MappingNode):
        out: dict = {}
        for key_node, value_node in node.value:
            key = key_node.value if isinstance(key_node, yaml.ScalarNode) else str(key_node.value)
            if key == "<<":
                diags.error("yaml-merge", "YAML merge keys ('<<') are not supported", Location(file, key_node.start_mark.line + 1, key_node.start_mark.column + 1), "write the keys out")
                continue
            if key in out:
                km = key_node.start_mark
                diags.error("duplicate-key", f"duplicate key '{key}' in mapping", Location(file, km.line + 1, km.column + 1), "remove one of them; YAML would silently keep the last")
            out[key] = _convert(value_node, path + (key,), locs, file, diags)
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_convert(child, path + (i,), locs, file, diags) for i, child in enumerate(node.value)]
    return _construct_scalar(node)


_scalar_constructor = yaml.SafeLoader("")  # only used to resolve plain scalars to Python values


def _construct_scalar(node: yaml.ScalarNode) -> Any:
    return _scalar_constructor.construct_object(node, deep=True)


def load_yaml(path: Path, display: str, diags: Diagnostics) -> LoadedFile | None:
    """Parse one YAML file. Syntax errors become located diagnostics, not exceptions."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        diags.error("missing-file", f"{path.name} not found", Location(display), f"create {display} (see README: 'Manifests')")
        return None
    try:
        node = yaml.compose(text, Loader=_Loader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        loc = Location(display, mark.line + 1, mark.column + 1) if mark else Location(display)
        diags.error("yaml-syntax", f"YAML syntax error: {exc.problem or exc}", loc, "fix the indentation or quoting at this position")
        return None
    loaded = LoadedFile(display, None)
    if node is None:
        diags.error("empty-file", f"{path.name} is empty", Location(display, 1, 1), "add 'version: 1' and the required sections")
        return None
    loaded.data = _convert(node, (), loaded.locations, display, diags)
    return loaded


@lru_cache(maxsize=None)
def load_schema(name: str) -> dict:
    return json.loads((SCHEMA_DIR / f"{name}.schema.json").read_text(encoding="utf-8"))


@lru_cache(maxsize=None)
def _validator(name: str):
    import jsonschema

    schema = load_schema(name)
    return jsonschema.Draft202012Validator(schema)


def check_schema(loaded: LoadedFile, schema_name: str, diags: Diagnostics) -> bool:
    """JSON Schema shape check; each violation becomes a diagnostic at the offending node."""
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
