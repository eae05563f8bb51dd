"""A processor's code fingerprint: what must be re-run when it changes.

Change detection compares a processor's *inputs* with what it last processed; it cannot see
that the processor itself changed. A new column in the SQL and the manifest, a fixed join,
a changed Python transform, other change-detection columns: the inputs are the same, so
detection says "nothing changed" and the table keeps rows computed by the old code. dbt
(``state:modified``) and SQLMesh (model fingerprints) solve this by hashing the model; so
does pipectl: the fingerprint hashes, per part,

* ``transform``: the bytes of the SQL file, or of the Python transform's module;
* ``columns``: the output table's column names, types and modes;
* ``change_detection``: enabled, and the columns that count;
* ``inputs``: the declared inputs (processor or source, mapping, criticality, compared
  columns, key expression), the entity kind and the output table's name.

The runtime stores the fingerprint of each successful run per processor and partition
(:mod:`framework.run.code_state`); a run whose fingerprint differs reprocesses every
entity, with the parts that changed as its reason ("transform changed: sql/x.sql"), and
``pipectl plan`` lists the processors that will be reprocessed. Pure: reads files only.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from framework.manifest.model import Processor, Project


def _hash(value: Any) -> str:
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def file_hash(path: Path) -> str:
    """sha256 of a file's bytes, or a marker naming the missing file (validate reports it)."""
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()[:16]
    except FileNotFoundError:
        return f"missing:{path.name}"


def python_module_path(project: Project, spec: str) -> Path:
    """The file of ``module.path:function`` under the project root (module or package)."""
    module = spec.split(":", 1)[0]
    base = project.root / Path(*module.split("."))
    return base.with_suffix(".py") if base.with_suffix(".py").exists() else base / "__init__.py"


def transform_code_hash(project: Project, processor: Processor) -> str:
    t = processor.transform
    if t.sql:
        return file_hash(project.root / t.sql)
    if t.python:
        return _hash([t.python, file_hash(python_module_path(project, t.python))])
    return "none"


def transform_label(project: Project, processor: Processor) -> str:
    """How a user names the transform: ``sql/x.sql`` or the Python module's file."""
    t = processor.transform
    if t.sql:
        return t.sql
    if t.python:
        try:
            return python_module_path(project, t.python).relative_to(project.root).as_posix()
        except ValueError:
            return t.python
    return "(none)"


@dataclass(frozen=True)
class Fingerprint:
    """``digest`` over every part; ``parts`` part name -> hash, to say *what* changed."""

    digest: str
    parts: Mapping[str, str]

    def to_dict(self) -> dict[str, Any]:
        return {"digest": self.digest, "parts": dict(self.parts)}


def processor_fingerprint(project: Project, processor: Processor) -> Fingerprint:
    out = processor.output
    cd = processor.change_detection
    parts = {
        "transform": transform_code_hash(project, processor),
        "columns": _hash([[c.name, c.type, c.mode] for c in out.columns] if out is not None else None),
        "change_detection": _hash([cd.enabled, list(cd.columns) if cd.columns is not None else None]),
        "inputs": _hash([[i.name, i.kind, i.mapping, i.critical, list(i.compare) if i.compare is not None else None,
                          getattr(i, "key", None)]
                         for i in processor.inputs] + [processor.entity, out.fqn if out is not None else None]),
    }
    return Fingerprint(_hash(parts), parts)


def describe_changes(project: Project, processor: Processor, old_parts: Mapping[str, str] | None,
                     new: Fingerprint) -> str:
    """Why a stored fingerprint differs: ``transform changed: sql/x.sql; output columns changed``."""
    if not old_parts:
        return "code changed since the last run"
    words = {"transform": f"transform changed: {transform_label(project, processor)}",
             "columns": f"output columns changed ({processor.output.fqn if processor.output else '-'})",
             "change_detection": "change-detection settings changed",
             "inputs": "inputs or entity kind changed"}
    changed = [words[k] for k in words if old_parts.get(k) != new.parts.get(k)]
    return "; ".join(changed) or "code changed since the last run"


__all__ = ["Fingerprint", "processor_fingerprint", "describe_changes", "transform_code_hash", "transform_label",
           "file_hash"]
