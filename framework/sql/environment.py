"""The Jinja environment that renders every SQL statement pipectl runs.

Templates are found by a ChoiceLoader, most specific first::

    <project>/templates/<dialect>/   a project's dialect override
    <project>/templates/             a project's generic override
    <builtin>/<dialect>/             pipectl's dialect override
    <builtin>/                       pipectl's generic template

so a dialect difference is one file in ``templates/<dialect>/`` and a user project can
replace any template without forking pipectl (dbt's ``adapter.dispatch`` idea).
``StrictUndefined`` turns a misspelt variable into an error instead of an empty string:
a template that silently renders ``WHERE  = @game_date`` is worse than one that fails.
"""
from __future__ import annotations

import os
import re
from functools import lru_cache
from pathlib import Path

import jinja2

import framework
from framework.sql.dialects import get_dialect

_NAME = re.compile(r"[A-Za-z0-9_.\-]+")
BUILTIN_TEMPLATES = Path(framework.__file__).resolve().parents[1] / "templates"


def search_path(project_root: Path | str | None, dialect: str) -> list[Path]:
    """The template folders, most specific first (duplicates removed, order kept)."""
    dirs: list[Path] = []
    if project_root is not None:
        root = Path(project_root).resolve() / "templates"
        dirs += [root / dialect, root]
    dirs += [BUILTIN_TEMPLATES / dialect, BUILTIN_TEMPLATES]
    seen: set[Path] = set()
    unique = []
    for d in dirs:
        if d not in seen:
            seen.add(d)
            unique.append(d)
    return unique


@lru_cache(maxsize=32)
def _environment(root_key: str | None, dialect: str) -> jinja2.Environment:
    d = get_dialect(dialect)
    loader = jinja2.ChoiceLoader([jinja2.FileSystemLoader(str(p)) for p in search_path(root_key, dialect)])
    env = jinja2.Environment(
        loader=loader,
        undefined=jinja2.StrictUndefined,
        autoescape=False,
        keep_trailing_newline=True,
        auto_reload=False,  # templates are read once per process; validate renders thousands
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["ident"] = d.ident
    env.filters["sqltype"] = d.column_type  # {{ 'INT64'|sqltype }} or {{ col.type|sqltype(col.mode) }}
    env.filters["literal"] = _literal
    env.globals["dialect"] = dialect
    return env


def environment(project_root: Path | str | None, dialect: str) -> jinja2.Environment:
    """The (cached) environment for a project root and dialect."""
    if project_root is None:
        return _environment(None, dialect)
    key = str(project_root)
    if not os.path.isabs(key):
        key = str(Path(key).resolve())
    return _environment(key, dialect)


@lru_cache(maxsize=32)
def _macros(env: jinja2.Environment) -> object:
    return env.get_template("_dialect.sql.j2").module


def dialect_macros(project_root: Path | str | None, dialect: str):
    """The ``_dialect.sql.j2`` macros as a Python object (``.param('x')``, ``.entity_in(c)``),
    so Python globals such as the transform's ``entity_filter`` reuse the template text."""
    return _macros(environment(project_root, dialect))


def _literal(value: str) -> str:
    """A SQL string literal for a manifest *name* (never for data values, which are params).

    Names are identifiers by schema; anything else is refused rather than escaped, so no
    data value can ever be pasted into SQL text through this filter."""
    text = str(value)
    if not _NAME.fullmatch(text):
        raise ValueError(f"refusing to paste {text!r} into SQL: only manifest names may be literals; pass values as query parameters")
    return f"'{text}'"
