"""pipectl's log lines: configured once (CLI root or function entry point), tagged by context.

Why: the framework logged through ``logging`` but never configured it, so only Python's
last-resort handler printed bare warnings, and nothing said which run a line belonged to.
Here:

* :func:`configure` installs one handler on the root logger: ``text`` for people, or
  ``json`` lines in the shape Cloud Logging parses from stdout/stderr (``severity``,
  ``message``, ``timestamp``, ``logging.googleapis.com/labels``,
  ``logging.googleapis.com/sourceLocation``; every other key lands in ``jsonPayload``);
* :func:`log_context` binds fields (correlation id, processor, partition, phase, run id)
  for the code below it, through a :mod:`contextvars` variable, so every logger of the
  framework and of project transforms carries them without being passed anything.

pipectl's own loggers (``framework.*``, ``pipectl.*``, ``pipelines.*``) log at the chosen
level; other libraries stay at WARNING unless the level is DEBUG.
"""
from __future__ import annotations

import contextlib
import contextvars
import datetime as dt
import json
import logging
import sys
from typing import Any, Iterator

LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
FORMATS = ("text", "json")
OWN_LOGGERS = ("framework", "pipectl", "pipelines")
CONTEXT_FIELDS = ("correlation_id", "processor", "partition", "phase", "run_id", "transition")
LABELS = "logging.googleapis.com/labels"
SOURCE = "logging.googleapis.com/sourceLocation"

_context: contextvars.ContextVar[dict[str, str]] = contextvars.ContextVar("pipectl_log_context", default={})


@contextlib.contextmanager
def log_context(**fields: Any) -> Iterator[dict[str, str]]:
    """Bind ``fields`` (None values are skipped) to every log line emitted inside the block,
    on top of the fields already bound; restored on exit (thread- and task-local)."""
    merged = {**_context.get(), **{k: str(v) for k, v in fields.items() if v is not None}}
    token = _context.set(merged)
    try:
        yield merged
    finally:
        _context.reset(token)


def current_context() -> dict[str, str]:
    return dict(_context.get())


class ContextFilter(logging.Filter):
    """Copies the bound context onto each record (``record.pipectl``)."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.pipectl = {**_context.get(), **getattr(record, "pipectl", {})}
        return True


class StderrHandler(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is at emit time (test capture, redirected CLI runs)."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property
    def stream(self) -> Any:  # type: ignore[override]
        return sys.stderr

    @stream.setter
    def stream(self, value: Any) -> None:
        pass


class JsonFormatter(logging.Formatter):
    """One JSON object per line, as Cloud Logging's structured logging reads it."""

    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        if record.exc_info:
            message += "\n" + self.formatException(record.exc_info)  # Error Reporting reads the stack here
        context = getattr(record, "pipectl", {})
        stamp = dt.datetime.fromtimestamp(record.created, dt.timezone.utc)
        doc: dict[str, Any] = {
            "severity": record.levelname if record.levelname in LEVELS else "DEFAULT",
            "message": message,
            "timestamp": stamp.isoformat(timespec="microseconds").replace("+00:00", "Z"),
            "logger": record.name,
            **context,
        }
        if context:
            doc[LABELS] = dict(context)  # labels: indexed by Cloud Logging, strings only
        doc[SOURCE] = {"file": record.pathname, "line": str(record.lineno), "function": record.funcName}
        return json.dumps(doc, default=str, ensure_ascii=False)


class JsonStderr:
    """``sys.stderr`` while ``--log-format json``: every line written to it leaves as a JSON
    log line, so a collector reading stderr (Cloud Logging, a CI log parser) never meets a
    line it cannot parse. Lines already JSON (the log handler's) pass as they are; the CLI's
    own lines (progress, ``warning: ...``, ``error: ...``) become records of the
    ``pipectl.console`` logger, severity from their prefix, with the bound context."""

    def __init__(self, raw: Any):
        self.raw, self._buffer = raw, ""
        self._format = JsonFormatter().format

    encoding = property(lambda self: getattr(self.raw, "encoding", "utf-8"))
    errors = property(lambda self: getattr(self.raw, "errors", "strict"))

    def isatty(self) -> bool:
        return False  # no live displays or colour in the middle of JSON lines

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        self._buffer += text
        while "\n" in self._buffer:
            line, self._buffer = self._buffer.split("\n", 1)
            self._emit(line)
        return len(text)

    def flush(self) -> None:
        if self._buffer:
            line, self._buffer = self._buffer, ""
            self._emit(line)
        self.raw.flush()

    def _emit(self, line: str) -> None:
        if not line.strip():
            return
        if line.startswith("{") and line.endswith("}"):
            self.raw.write(line + "\n")
            return
        lower = line.lower()
        level = logging.ERROR if lower.startswith(("error:", "aborted")) else \
            logging.WARNING if lower.startswith("warning:") else logging.INFO
        record = logging.LogRecord("pipectl.console", level, "", 0, line, None, None)
        record.pipectl = current_context()
        doc = json.loads(self._format(record))
        doc.pop(SOURCE, None)  # no source location: the line is the CLI's output, not a logger call
        self.raw.write(json.dumps(doc, default=str, ensure_ascii=False) + "\n")


def restore_stderr() -> None:
    """Undo the JSON wrapping of stderr (the CLI's entry point, after its last line)."""
    if isinstance(sys.stderr, JsonStderr):
        sys.stderr.flush()
        sys.stderr = sys.stderr.raw


class TextFormatter(logging.Formatter):
    """For people. Terse by default, as the CLI's own lines (``warning: message
    [processor=x partition=y]``); with ``detailed`` (``-v``, ``--log-level``) the time and
    the logger's name come first: ``12:00:01 INFO framework.run.runner [...] message``."""

    def __init__(self, detailed: bool = False):
        super().__init__()
        self.detailed = detailed

    def format(self, record: logging.LogRecord) -> str:
        context = getattr(record, "pipectl", {})
        tags = " ".join(f"{k}={context[k]}" for k in CONTEXT_FIELDS if k in context)
        if self.detailed:
            when = dt.datetime.fromtimestamp(record.created).strftime("%H:%M:%S")
            line = f"{when} {record.levelname:<7} {record.name}" + (f" [{tags}]" if tags else "") + f" {record.getMessage()}"
        else:
            line = f"{record.levelname.lower()}: {record.getMessage()}" + (f" [{tags}]" if tags else "")
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


def level_of(verbose: int = 0, level: str | None = None) -> int:
    """``--log-level`` wins; else ``-v`` INFO, ``-vv`` DEBUG; else WARNING."""
    if level:
        name = level.upper()
        if name not in LEVELS:
            raise ValueError(f"unknown log level '{level}' (one of {', '.join(LEVELS)})")
        return getattr(logging, name)
    return {0: logging.WARNING, 1: logging.INFO}.get(verbose, logging.DEBUG)


def configure(level: int = logging.WARNING, fmt: str = "text", detailed: bool | None = None) -> logging.Handler:
    """(Re)install pipectl's one handler on the root logger; idempotent (a second call
    replaces the first handler, so repeated CLI invocations in one process never double
    lines). At the default level (WARNING) logger levels are left to inherit, as Python's
    defaults do; otherwise pipectl's own loggers get ``level`` (and the root DEBUG with it)."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown log format '{fmt}' (one of {', '.join(FORMATS)})")
    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, "pipectl", False)]:
        root.removeHandler(old)
    restore_stderr()
    if fmt == "json":
        sys.stderr = JsonStderr(sys.stderr)  # type: ignore[assignment]
    handler = StderrHandler()
    handler.pipectl = True  # type: ignore[attr-defined]
    handler.addFilter(ContextFilter())
    handler.setFormatter(JsonFormatter() if fmt == "json" else
                         TextFormatter(level < logging.WARNING if detailed is None else detailed))
    root.addHandler(handler)
    for name in OWN_LOGGERS:
        logging.getLogger(name).setLevel(logging.NOTSET if level == logging.WARNING else level)
    if level <= logging.DEBUG:
        root.setLevel(logging.DEBUG)
        root.pipectl_raised = True  # type: ignore[attr-defined]
    elif getattr(root, "pipectl_raised", False):
        root.setLevel(logging.WARNING)
        root.pipectl_raised = False  # type: ignore[attr-defined]
    return handler


__all__ = ["CONTEXT_FIELDS", "FORMATS", "JsonStderr", "LEVELS", "configure", "current_context", "level_of", "log_context",
           "restore_stderr"]
