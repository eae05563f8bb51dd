"""Human output of the commands that run work: rich tables, colour and progress bars on a
terminal; the plain lines scripts and CI logs expect when piped.

Rules (each one a complaint about the old output):

* colour and live bars only on a terminal: ``rich`` writes no ANSI code to a pipe or a file,
  none with ``NO_COLOR`` set (https://no-color.org), and ``--json`` prints no progress at all;
* every failure is printed once, where it happens, with its cause and fix: the processor's
  progress line. The log lines and alert lines about the same failure (the runner's error,
  the alert sink's ``[ERROR] processor_failed:...``, the orchestrator's critical alert) are
  held back while progress is shown, and the alerts are summed up in one line at the end
  (``-v`` or ``--log-format json`` prints them all);
* ``1 processor``, never ``(1 processors)``.

``rich`` is imported inside the functions that draw (it costs ~40 ms): ``pipectl --help``,
``validate`` and ``ls`` never load it (tests/unit/cli/test_validate_cli.py).
"""
from __future__ import annotations

import contextlib
import logging
import sys
from typing import Any, Callable, Iterator

import click

STATUS_STYLE = {"success": "green", "partial": "yellow", "failed": "bold red", "skipped": "yellow",
                "no_data": "dim", "unchanged": "dim", "not_run": "dim", "running": "cyan"}


def on_terminal(err: bool = False) -> bool:
    stream = sys.stderr if err else sys.stdout
    return bool(getattr(stream, "isatty", lambda: False)())


def console(err: bool = False) -> Any:
    """A rich console on stdout/stderr: colour only on a terminal and without NO_COLOR."""
    from rich.console import Console

    return Console(file=sys.stderr if err else sys.stdout, highlight=False, soft_wrap=True)


def plural(n: int, word: str) -> str:
    return f"{n} {word if n == 1 else word + 's'}"


def styled(status: str) -> str:
    style = STATUS_STYLE.get(status)
    return f"[{style}]{status}[/]" if style else status


# ------------------------------------------------------------------ tables
def print_phase_table(report: Any, baseline: dict[str, float] | None = None) -> None:
    """The per-phase table of a run: a rich table on a terminal, plain text when piped."""
    from framework.drive.reports import EFFICIENCY_NOTE, phase_table

    if not on_terminal():
        click.echo(phase_table(report, baseline))
        return
    from rich.table import Table

    table = Table(box=None, pad_edge=False, header_style="bold")
    for name, justify in (("PHASE", "left"), ("STATUS", "left"), ("ENTITIES", "left"), ("PROCESSED", "right"),
                          ("EFFICIENCY", "right"), ("TIME", "right")):
        table.add_column(name, justify=justify)  # type: ignore[arg-type]
    if baseline is not None:
        table.add_column("FULL BATCH", justify="right")
    for ph in report.phases:
        kinds = ", ".join(plural(len(v), k) for k, v in ph.distinct_entities().items()) or "-"
        eff = f"{ph.efficiency_pct:.1f}%" if ph.efficiency_pct is not None else "-"
        row = [ph.phase, styled(ph.status), kinds, f"{ph.entities_processed} of {ph.entities_total}", eff,
               f"{ph.seconds:.3f}s"]
        if baseline is not None:
            full = baseline.get(ph.phase)
            ratio = f" ({full / ph.seconds:.1f}x)" if full and ph.seconds else ""
            row.append(f"{full:.3f}s{ratio}" if full is not None else "n/a")
        table.add_row(*row)
    out = console()
    out.print(table)
    out.print(f"total {report.seconds:.3f}s, status {styled(report.status)}, correlation id {report.correlation_id}")
    if getattr(report, "summary", None):
        out.print(report.summary, style="red" if report.status == "failed" else None)
    for ph in report.other_rounds:
        out.print(f"also ran: {ph.phase} for an earlier run's late round (trigger {ph.trigger_id}, "
                  f"{plural(len(ph.runs), 'processor')}, {ph.seconds:.3f}s)")
    for note in getattr(report, "notes", []):
        out.print(f"note: {note}", markup=False)
    for wait in report.waiting:
        out.print(f"[yellow]waiting:[/] {wait}")
    if report.phases:
        out.print(EFFICIENCY_NOTE + ("; FULL BATCH: the last full run of the same phase and date, (Nx) how much "
                                     "longer it took" if baseline is not None else ""), style="dim")


# ------------------------------------------------------------------ progress
class RunProgress:
    """The progress callback of a run (``framework.drive.pipeline.Progress``) that draws.

    On a terminal: a bar per phase (its processors done of dispatched) with one coloured line
    per processor above it. Piped: one plain line per processor and phase. ``compact``
    (the demo's history days): only the bar, no per-processor lines; nothing when piped."""

    def __init__(self, compact: bool = False, label: str = ""):
        self.compact, self.label = compact, label
        self.live = on_terminal(err=True)
        self.progress: Any = None
        self.tasks: dict[str, Any] = {}
        self.failures: list[str] = []

    def __call__(self, event: str, data: dict[str, Any]) -> None:
        if self.live:
            self._draw(event, data)
        elif not self.compact:
            self._line(event, data)

    def _line(self, event: str, data: dict[str, Any]) -> None:
        if event == "start":
            click.echo(f"run {data['partition']} ({data['mode']}), correlation id {data['correlation_id']}", err=True)
        elif event == "phase_start":
            click.echo(f"[{data['phase']}] triggered ({plural(len(data['processors']), 'processor')})", err=True)
        elif event == "processor_done":
            click.echo(_processor_line(data), err=True)
            if data.get("error"):
                click.echo(f"    error: {data['error']}", err=True)
        elif event in ("foreign_trigger", "rejected_trigger"):
            click.echo(_trigger_note(event, data), err=True)
        elif event == "gate_blocked":
            click.echo(f"  quality gate blocked phase {data['phase']}: {data['error']}", err=True)

    def _draw(self, event: str, data: dict[str, Any]) -> None:
        from rich.markup import escape
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

        if self.progress is None:
            self.progress = Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(),
                                     MofNCompleteColumn(), TimeElapsedColumn(), console=console(err=True),
                                     transient=self.compact)
            self.progress.start()
        out = self.progress.console
        if event == "start" and not self.compact:
            out.print(f"run {data['partition']} ({data['mode']}), correlation id {data['correlation_id']}")
        elif event == "phase_start":
            name = f"{self.label}[{data['phase']}]".strip()
            self.tasks[data["phase"]] = self.progress.add_task(escape(name), total=len(data["processors"]) or None)
        elif event == "processor_done":
            task = self.tasks.get(data.get("phase", "")) if data.get("phase") else None
            task = task if task is not None else (list(self.tasks.values())[-1] if self.tasks else None)
            if task is not None:
                self.progress.advance(task)
            if not self.compact or data.get("error"):
                status = data["status"]
                line = escape(_processor_line(data)).replace(f" {status} ", f" {styled(status)} ", 1)
                out.print(line)
                if data.get("error"):
                    out.print(f"    [red]error:[/] {escape(str(data['error']))}")
        elif event in ("foreign_trigger", "rejected_trigger"):
            out.print(escape(_trigger_note(event, data)))
        elif event == "gate_blocked":
            out.print(f"  [red]quality gate blocked[/] phase {escape(data['phase'])}: {escape(str(data['error']))}")
        elif event == "phase_done":
            task = self.tasks.get(data.get("phase", ""))
            if task is not None:
                self.progress.update(task, total=self.progress.tasks[task].completed or 1,
                                     completed=self.progress.tasks[task].completed or 1)
        elif event == "end":
            self.close()  # the run's table is printed next, on stdout: no live display under it

    def close(self) -> None:
        if self.progress is not None:
            self.progress.stop()
            self.progress = None
            self.tasks = {}


def _processor_line(data: dict[str, Any]) -> str:
    reason = f"  ({data['reason']})" if data.get("reason") and not data.get("error") else ""
    return (f"  {data['processor']:<36} {data['status']:<8} {data['entities']:>4}/{data['total']:<4} entities "
            f"{data['rows']:>6} rows {data['seconds']:>8.3f}s{reason}")


def _trigger_note(event: str, data: dict[str, Any]) -> str:
    if event == "foreign_trigger":
        return (f"  note: a trigger of phase {data['phase']} for {data['partition']} was left on the bus; "
                f"run `pipectl run --date {data['partition']} --from-phase {data['phase']}` to process it")
    return f"  error: {data['error']}"


@contextlib.contextmanager
def run_output(quiet: bool, compact: bool = False) -> Iterator[Callable[[str, dict[str, Any]], None] | None]:
    """The progress callback of a command (None when quiet), with the duplicate log lines of
    what it shows held back and the alerts raised summed up at the end (see the module doc)."""
    if quiet:
        yield None
        return
    progress = RunProgress(compact=compact)
    held = HeldBack()
    handlers = [h for h in logging.getLogger().handlers if getattr(h, "pipectl", False)
                and type(h.formatter).__name__ == "TextFormatter" and not getattr(h.formatter, "detailed", True)]
    for h in handlers:
        h.addFilter(held)
    try:
        yield progress
    finally:
        progress.close()
        for h in handlers:
            h.removeFilter(held)
        if held.alerts:
            names = sorted(held.alerts)
            shown = ", ".join(f"{n} ({held.alerts[n]})" for n in names[:6]) + (", ..." if len(names) > 6 else "")
            click.echo(f"alerts raised: {shown}; their text went to the configured sinks (-v prints it here)", err=True)


@contextlib.contextmanager
def backfill_output(as_json: bool) -> Iterator[Callable[[str, dict[str, Any]], None] | None]:
    """Dates of a backfill: a bar on a terminal, ``[3/10] 2025-01-08 done`` lines when piped."""
    if as_json:
        yield None
        return
    state: dict[str, Any] = {}
    live = on_terminal(err=True)

    def show(event: str, data: dict[str, Any]) -> None:
        if event != "backfill_date":
            return
        if not live:
            click.echo(f"[{data['index']}/{data['total']}] {data['date']} {data['status']}", err=True)
            return
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

        if "bar" not in state:
            state["bar"] = Progress(TextColumn("backfill {task.fields[date]}"), BarColumn(), MofNCompleteColumn(),
                                    TimeElapsedColumn(), TimeRemainingColumn(), console=console(err=True))
            state["bar"].start()
            state["task"] = state["bar"].add_task("backfill", total=data["total"], date="")
        if data["status"] == "failed":
            state["bar"].console.print(f"[red]failed[/] {data['date']}")
        state["bar"].update(state["task"], completed=data["index"], date=f"{data['date']} {data['status']}")

    try:
        yield show
    finally:
        if "bar" in state:
            state["bar"].stop()


@contextlib.contextmanager
def working(text: str, quiet: bool = False) -> Iterator[None]:
    """A spinner on stderr while long work with no finer progress runs (apply, verify); on a
    pipe, with --json or quiet: nothing."""
    if quiet or not on_terminal(err=True):
        yield
        return
    with console(err=True).status(text):
        yield


# line prefix -> style: Terraform's colours for plans, ok/FAILED for verify
LINE_STYLES = (("  + ", "green"), ("  - ", "red"), ("  ~ ", "yellow"), ("  -/+ ", "magenta"), ("ok: ", "green"),
               ("FAILED", "bold red"), ("error", "red"))


def echo_styled(text: str, statuses: bool = False) -> None:
    """Print command text; on a terminal, lines coloured by their prefix (and, with
    ``statuses``, status words such as equal/differs). Piped: unchanged."""
    if not on_terminal():
        click.echo(text)
        return
    from rich.text import Text

    out = console()
    for line in text.splitlines():
        style = next((st for prefix, st in LINE_STYLES if line.startswith(prefix)), None)
        rendered = Text(line, style=style or "")
        if statuses:
            rendered.highlight_words([" equal ", " success "], "green")
            rendered.highlight_words([" differs ", " failed ", " differ "], "bold red")
        out.print(rendered)


class HeldBack(logging.Filter):
    """Drops log lines that repeat what the progress shows, and keeps alert lines to count."""

    def __init__(self) -> None:
        super().__init__()
        self.alerts: dict[str, str] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "progress_event", None):
            return False
        if record.name == "pipectl.alerts" and hasattr(record, "alert_context"):
            signature = str(record.getMessage()).split(": ", 1)[0]
            level, _, name = signature.partition("] ")
            self.alerts[name or signature] = level.lstrip("[").lower() or record.levelname.lower()
            return False
        return True


__all__ = ["RunProgress", "backfill_output", "console", "echo_styled", "working", "on_terminal", "print_phase_table", "run_output"]
