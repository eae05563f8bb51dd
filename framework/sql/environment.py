"""The Jinja environment that renders every SQL statement pipectl runs.

Templates are found by a ChoiceLoader, most specific first::

    <project>/templates/<dialect>/              a project's dialect override
    <project>/templates/                        a project's generic override
    framework.sql: templates/<dialect>/         pipectl's dialect override (package data)
    framework.sql: templates/                   pipectl's generic template (package data)

so a dialect difference is one file in ``templates/<dialect>/`` and a user project can
replace any template without forking pipectl (dbt's ``adapter.dispatch`` idea). The
built-in templates are package data, found through the package (``importlib.resources``,
Jinja's ``PackageLoader``), never through a path relative to a source checkout: pipectl
installed from a wheel renders the same SQL as pipectl run from its repository.
``StrictUndefined`` turns a misspelt variable into an error instead of an empty string:
a template that silently renders ``WHERE  = @game_date`` is worse than one that fails.

Compiled templates are kept across runs in the project's ``.pipectl/cache/`` (Jinja's
bytecode cache, checked against each template's source): compiling them was a tenth of a
one-entity update's whole-process time. ``PIPECTL_NO_CACHE=1`` disables it.
"""
from __future__ import annotations

import logging
import os
import re
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

import jinja2

from framework.sql import cache_files
from framework.sql.dialects import get_dialect

if TYPE_CHECKING:
    from importlib.abc import Traversable

log = logging.getLogger(__name__)
# Part of the bytecode cache folder: compiled code depends on the Environment's options below.
_BYTECODE_TAG = f"jinja-{jinja2.__version__}-1"
_NAME = re.compile(r"[A-Za-z0-9_.\-]+")
BUILTIN_PACKAGE = "framework.sql"
BUILTIN_FOLDER = "templates"
BUILTIN_TEMPLATES: "Traversable" = resources.files(BUILTIN_PACKAGE) / BUILTIN_FOLDER
PROJECT_FOLDER = "templates"  # a project's overrides: <project>/templates/[<dialect>/]


def project_template_dirs(project_root: Path | str | None, dialect: str) -> list[Path]:
    """A project's override folders, most specific first (they need not exist)."""
    if project_root is None:
        return []
    root = Path(project_root).resolve() / PROJECT_FOLDER
    return [root / dialect, root]


def search_path(project_root: Path | str | None, dialect: str) -> list[Path | "Traversable"]:
    """Every template folder, most specific first: the project's, then the package's."""
    return [*project_template_dirs(project_root, dialect), BUILTIN_TEMPLATES / dialect, BUILTIN_TEMPLATES]


def _loaders(project_root: str | None, dialect: str) -> list[jinja2.BaseLoader]:
    loaders: list[jinja2.BaseLoader] = [jinja2.FileSystemLoader(str(p)) for p in project_template_dirs(project_root, dialect)]
    if (BUILTIN_TEMPLATES / dialect).is_dir():
        loaders.append(jinja2.PackageLoader(BUILTIN_PACKAGE, f"{BUILTIN_FOLDER}/{dialect}"))
    loaders.append(jinja2.PackageLoader(BUILTIN_PACKAGE, BUILTIN_FOLDER))
    return loaders


@lru_cache(maxsize=32)
def _environment(root_key: str | None, dialect: str) -> jinja2.Environment:
    d = get_dialect(dialect)
    loader = jinja2.ChoiceLoader(_loaders(root_key, dialect))
    env = jinja2.Environment(
        loader=loader,
        bytecode_cache=_bytecode_cache(root_key),
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


class _BytecodeCache(jinja2.FileSystemBytecodeCache):
    """Jinja's file cache, created on first write; an unwritable folder only costs speed."""

    def __init__(self, directory: Path):
        super().__init__(str(directory))
        self.folder = directory

    def dump_bytecode(self, bucket: "jinja2.bccache.Bucket") -> None:
        try:
            cache_files.prepare(self.folder)
            super().dump_bytecode(bucket)
        except OSError as exc:  # a read-only checkout
            log.info("not caching compiled template %s: %s", bucket.key, exc)


def _bytecode_cache(root_key: str | None) -> jinja2.BytecodeCache | None:
    if root_key is None or os.environ.get("PIPECTL_NO_CACHE"):
        return None
    return _BytecodeCache(cache_files.cache_dir(root_key) / _BYTECODE_TAG)


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


def reset_template_cache() -> None:
    """Forget compiled templates (they are read once per process, for speed): a long-lived
    process that lets users edit ``templates/`` calls this to see the edits."""
    from framework.sql import rendered

    _environment.cache_clear()
    _macros.cache_clear()
    rendered.reset()  # statements rendered from the old templates


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
