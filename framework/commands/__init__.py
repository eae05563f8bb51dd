"""CLI commands, one module per group of commands; each is thin over the library API."""
from __future__ import annotations

import click


def project_dir(ctx: click.Context) -> str:
    return (ctx.find_root().obj or {}).get("project_dir", ".")


def target_name(ctx: click.Context) -> str | None:
    return (ctx.find_root().obj or {}).get("target")
