"""Jinja rendering of the UI pages, live (served) or static (files on disk).

One set of templates serves both: a page asks ``link('processor', name=...)`` and gets
``/processor/x`` from the live app, or a relative path (``../processors/x.html``) in the
static site, so the site opens from the file system with no server. Templates and assets
are package data (``framework/ui/templates``, ``framework/ui/static``), loaded through the
package, never from the working directory.
"""
from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import jinja2

STATIC_DIR = Path(__file__).with_name("static")
TEMPLATE_DIR = Path(__file__).with_name("templates")

# static site: page kind -> file path relative to the site root
_STATIC_PATHS = {"pipeline": "index.html", "processor": "processors/{name}.html", "lineage": "lineage.html"}
_LIVE_PATHS = {"pipeline": "/", "processor": "/processor/{name}", "partitions": "/partitions",
               "partition": "/partition/{date}", "traces": "/traces", "trace": "/trace/{cid}", "alerts": "/alerts"}


def _when(ts: Any) -> str:
    if not ts:
        return "-"
    return dt.datetime.fromtimestamp(float(ts)).strftime("%Y-%m-%d %H:%M:%S")


def _seconds(value: Any) -> str:
    if value is None:
        return "-"
    value = float(value)
    return f"{value * 1000:.0f} ms" if value < 1 else f"{value:.2f} s"


class Renderer:
    """Renders a template for the live app (``live=True``) or the static site."""

    def __init__(self, live: bool, refresh_seconds: float = 3.0):
        self.live = live
        self.refresh_seconds = refresh_seconds
        self.env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(TEMPLATE_DIR)),
                                      autoescape=True, undefined=jinja2.StrictUndefined,
                                      trim_blocks=True, lstrip_blocks=True)
        self.env.filters["when"] = _when
        self.env.filters["seconds"] = _seconds

    def link(self, depth: int, kind: str, **params: Any) -> str | None:
        """The URL of a page; None for a page the static site does not have."""
        if self.live:
            query = params.pop("query", None)
            url = _LIVE_PATHS[kind].format(**{k: quote(str(v), safe="") for k, v in params.items()})
            return url + ("?" + urlencode(query) if query else "")
        params.pop("query", None)
        if kind not in _STATIC_PATHS:
            return None
        return "../" * depth + _STATIC_PATHS[kind].format(**{k: quote(str(v), safe="") for k, v in params.items()})

    def page(self, template: str, depth: int = 0, **context: Any) -> str:
        """``depth``: folders between the site root and the page (static site only)."""
        context.setdefault("path", "")
        context.setdefault("query", "")
        context.setdefault("allow_actions", False)
        context.setdefault("csrf", "")
        context.setdefault("action", None)
        context.setdefault("action_running", None)
        static = "/static/" if self.live else "../" * depth + "static/"
        return self.env.get_template(template).render(
            live=self.live, refresh=self.refresh_seconds, static=static,
            link=lambda kind, **kw: self.link(depth, kind, **kw), **context)
