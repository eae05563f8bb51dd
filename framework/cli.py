"""`pipectl`: a thin click layer over the library API.

Commands are registered lazily (name -> "module:function") so that ``pipectl --help`` and
``pipectl validate`` never import duckdb, sqlglot or cloud SDKs. Each command module lives
in ``framework/commands/`` and only parses options, calls one library function and hands
the result to ``framework.console`` for text or JSON.

Exit codes: 0 success; 1 error (manifest/backend/plan errors print ``error: ...``);
2 usage error (and ``plan --detailed-exitcode`` when changes are pending).
"""
from __future__ import annotations

import importlib
import os
import sys

from framework import dataclass_code

# the pipectl process only (not a program importing the library): before the first of
# pipectl's dataclasses is made, so a command's imports reuse their compiled methods
dataclass_code.install()

import click  # noqa: E402

from framework import __version__  # noqa: E402

# name -> "module:attribute"; keep sorted by name. Adding a command = one line here.
COMMANDS: dict[str, str] = {
    "apply": "framework.commands.plan:apply_cmd",
    "backfill": "framework.commands.run:backfill_cmd",
    "bus": "framework.commands.bus:bus_cmd",
    "completion": "framework.commands.completion:completion_cmd",
    "demo": "framework.commands.data:demo_cmd",
    "docs": "framework.commands.ui:docs_cmd",
    "graph": "framework.commands.inspect:graph_cmd",
    "history": "framework.commands.inspect:history_cmd",
    "init": "framework.commands.init:init_cmd",
    "load": "framework.commands.data:load_cmd",
    "ls": "framework.commands.inspect:ls_cmd",
    "package": "framework.commands.package:package_cmd",
    "plan": "framework.commands.plan:plan_cmd",
    "render": "framework.commands.render:render_cmd",
    "run": "framework.commands.run:run_cmd",
    "sample": "framework.commands.data:sample_cmd",
    "schema": "framework.commands.init:schema_cmd",
    "simulate": "framework.commands.data:simulate_cmd",
    "status": "framework.commands.orchestrator:status_cmd",
    "sweep": "framework.commands.orchestrator:sweep_cmd",
    "test": "framework.commands.test:test_cmd",
    "trace": "framework.commands.inspect:trace_cmd",
    "ui": "framework.commands.ui:ui_cmd",
    "validate": "framework.commands.validate:validate_cmd",
    "verify": "framework.commands.verify:verify_cmd",
}


def _complete_target(ctx: click.Context, param: click.Parameter, incomplete: str) -> list:
    from framework.commands.types import complete_target

    return complete_target(ctx, param, incomplete)


class LazyGroup(click.Group):
    """A click group that imports a command's module only when that command runs."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        target = COMMANDS.get(name)
        if target is None:
            return None
        module, attr = target.split(":")
        return getattr(importlib.import_module(module), attr)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="pipectl")
@click.option("--project", "-p", "project_dir", default=".", show_default=True, envvar="PIPECTL_PROJECT",
              type=click.Path(file_okay=False), help="Project folder (holds processors.yaml and topics.yaml).")
@click.option("--target", "-t", default=None, envvar="PIPECTL_TARGET", shell_complete=_complete_target,
              help="Backend target from pipectl.yaml (default: the file's default, else 'local').")
@click.option("--verbose", "-v", count=True, help="More log lines on stderr: -v info, -vv debug.")
@click.option("--log-level", default=None, envvar="PIPECTL_LOG_LEVEL", metavar="LEVEL",
              type=click.Choice(["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"], case_sensitive=False),
              help="Log level of pipectl's loggers (overrides -v). [env PIPECTL_LOG_LEVEL]")
@click.option("--log-format", default="text", envvar="PIPECTL_LOG_FORMAT", show_default=True,
              type=click.Choice(["text", "json"]),
              help="json: one JSON object per line with severity, message, timestamp, correlation_id, processor, "
                   "partition (Cloud Logging's structured format). [env PIPECTL_LOG_FORMAT]")
@click.pass_context
def cli(ctx: click.Context, project_dir: str, target: str | None, verbose: int, log_level: str | None,
        log_format: str) -> None:
    """pipectl: declarative multi-phase pipelines (validate, render, run, plan, apply)."""
    from framework.config.logs import configure, level_of

    configure(level_of(verbose, log_level), log_format)
    ctx.obj = {"project_dir": project_dir, "target": target, "verbose": verbose, "log_format": log_format}


def main(argv: list[str] | None = None) -> int:
    """Console-script entry point: maps pipectl errors to `error: ...` and exit code 1."""
    from framework.config.logs import restore_stderr

    _freeze_at_exit()
    try:
        return _main(argv)
    finally:
        restore_stderr()  # --log-format json wrapped stderr for this invocation only


_FREEZE_REGISTERED: list[bool] = []


def _freeze_at_exit() -> None:
    """At interpreter exit, move every live object to the collector's permanent generation
    (``gc.freeze``) before Python's own shutdown collections, which otherwise traverse every
    object the command left (its modules, the loaded project, DuckDB's module): ~35 ms of
    CPU at the end of a one-entity update, of ~45 ms its process spent exiting
    (docs/performance.md). Registered with ``atexit``, so it runs only when the process
    ends (never between the calls of a test session) and after the command has closed its
    connections and files; refcounting still frees what shutdown releases, only cycles left
    at exit are not searched for (Python does not promise their ``__del__`` at exit)."""
    if not _FREEZE_REGISTERED:
        import atexit
        import gc

        atexit.register(gc.freeze)
        _FREEZE_REGISTERED.append(True)


def _main(argv: list[str] | None) -> int:
    from framework.errors import PipectlError

    if "_PIPECTL_COMPLETE" in os.environ:  # the shell asks for completions: pipectl's bash completion, not click's
        import framework.commands.completion  # noqa: F401 - registers it
    try:
        cli.main(args=argv, prog_name="pipectl", standalone_mode=False)
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except click.UsageError as exc:  # bad arguments: usage, then one `error:` line (exit 2)
        if exc.ctx is not None:
            click.echo(exc.ctx.get_usage(), err=True)
            click.echo(f"Try '{exc.ctx.command_path} -h' for help.", err=True)
        click.echo(f"error: {exc.format_message()}", err=True)
        return 2
    except click.Abort:
        click.echo("aborted", err=True)
        return 1
    except click.ClickException as exc:
        click.echo(f"error: {exc.format_message()}", err=True)
        return exc.exit_code
    except PipectlError as exc:
        for line in _error_lines(exc):
            click.echo(f"error: {line}", err=True)
        return 1
    except SystemExit as exc:  # commands exit with explicit codes
        if isinstance(exc.code, str):  # SystemExit("message"): print it, status 1 (as Python does)
            click.echo(exc.code, err=True)
            return 1
        return int(exc.code or 0)
    return 0


def _error_lines(exc) -> list[str]:
    """One line per problem: ``file:line:col: message (hint)``."""
    diagnostics = getattr(exc, "diagnostics", None)
    if not diagnostics:
        return [exc.render()]
    lines = []
    for d in diagnostics:
        if d.severity == "error":
            lines.append(f"{d.location}: {d.message}" + (f" ({d.hint})" if d.hint else ""))
    return lines


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
