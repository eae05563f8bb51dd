"""`pipectl ui` (the local web view) and `pipectl docs generate` (the same pages, static).

`ui` needs the ``ui`` extra (Starlette, uvicorn), imported only here, inside the command;
`docs generate` needs only Jinja, a core dependency.
"""
from __future__ import annotations

import os

import click

from framework.commands import project_dir, target_name


@click.command("ui")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Interface to bind. Anything but loopback requires a token.")
@click.option("--port", default=8765, show_default=True, type=int)
@click.option("--token", default=None, envvar="PIPECTL_UI_TOKEN",
              help="Required on every request (as ?token=, a cookie, or Authorization: Bearer). Required with a non-loopback --host.")
@click.option("--allow-actions", is_flag=True,
              help="Enable re-running a partition, running the sweep and replaying a dead letter (read-only without it).")
@click.option("--refresh", default=3.0, show_default=True, type=float, help="Seconds between live updates of a page.")
@click.pass_context
def ui_cmd(ctx: click.Context, host: str, port: int, token: str | None, allow_actions: bool, refresh: float) -> None:
    """Serve a local web view: the pipeline graph by phase, processors with their SQL and
    history, the partitions x phases grid, traces, alerts and dead letters."""
    import framework.ui
    from framework.errors import ConfigError

    framework.ui.require()
    from framework.ui.security import LOOPBACK_NAMES, is_loopback

    if not is_loopback(host) and not token:
        raise ConfigError(f"pipectl ui bound to {host} needs a token (anyone on the network could read the pipeline)",
                          hint="pass --token T (or set PIPECTL_UI_TOKEN), or bind --host 127.0.0.1")
    if refresh <= 0:
        raise click.BadParameter("must be more than 0", param_hint="--refresh")
    import uvicorn

    from framework.ui.app import create_app

    app = create_app(project_dir(ctx), target_name(ctx), token=token, allow_actions=allow_actions, refresh_seconds=refresh,
                     allowed_hosts=LOOPBACK_NAMES if is_loopback(host) and not token else None)
    shown = "127.0.0.1" if host in ("0.0.0.0", "::") else host
    url = f"http://{shown}:{port}/" + (f"?token={token}" if token else "")
    click.echo(f"pipectl ui on {url} ({'actions enabled' if allow_actions else 'read-only'}; Ctrl+C stops it)", err=True)
    uvicorn.run(app, host=host, port=port, log_level=os.environ.get("PIPECTL_UI_LOG_LEVEL", "warning"))


@click.group("docs")
def docs_cmd() -> None:
    """Project documentation generated from the manifests."""


@docs_cmd.command("generate")
@click.option("--out", "out", default="site", show_default=True, type=click.Path(file_okay=False),
              help="Folder to write (created; pipectl's own files in it are replaced).")
@click.pass_context
def docs_generate_cmd(ctx: click.Context, out: str) -> None:
    """Write the pipeline, processor and lineage pages as a static site that opens from the
    file system (relative links, no server): host it from CI like dbt docs."""
    from framework.ui.static_site import generate

    result = generate(project_dir(ctx), out)
    click.echo(f"wrote {result.pages} pages to {result.out} (open {result.out / 'index.html'})")
