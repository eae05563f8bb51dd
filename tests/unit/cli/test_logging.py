"""Logging is configured once at the CLI root (-v/-vv, --log-level, --log-format text|json)
and every line of a run carries its correlation id, processor and partition: JSON lines in
the shape Cloud Logging indexes (severity, message, timestamp, labels)."""
from __future__ import annotations

import datetime as dt
import json
import logging

import pytest

from framework.cli import main
from framework.config.logs import LABELS, configure, current_context, level_of, log_context
from framework.scaffold import init_example

DAY = "2025-03-03"


@pytest.fixture(scope="module")
def iot(tmp_path_factory):
    root = tmp_path_factory.mktemp("iot-logs") / "iot"
    init_example(root, "iot_sensors")
    assert main(["-p", str(root), "sample", "--date", DAY]) == 0
    return root


@pytest.fixture(autouse=True)
def default_logging():
    yield
    configure()  # back to the default: later tests see Python's usual levels


def _json_lines(err: str) -> list[dict]:
    return [json.loads(line) for line in err.splitlines() if line.startswith("{")]


def test_json_lines_parse_and_carry_the_run_fields(iot, capsys):
    assert main(["-p", str(iot), "--log-format", "json", "-v", "run", "--date", DAY, "--full", "--json", "-q"]) == 0
    captured = capsys.readouterr()
    report = json.loads(captured.out)
    lines = _json_lines(captured.err)
    assert lines and all(set(line) >= {"severity", "message", "timestamp", "logger"} for line in lines)
    assert {line["severity"] for line in lines} <= {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}
    for line in lines:
        assert dt.datetime.fromisoformat(line["timestamp"].replace("Z", "+00:00")).tzinfo is not None
    runs = [line for line in lines if line.get("processor") == "readings_clean" and line["severity"] == "INFO"]
    assert runs, lines
    run = runs[0]
    assert run["correlation_id"] == report["correlation_id"] and run["partition"] == DAY and run["phase"] == "ingest"
    assert run[LABELS] == {k: run[k] for k in ("correlation_id", "partition", "processor", "phase", "run_id")}
    assert all(isinstance(v, str) for v in run[LABELS].values())  # labels are strings (Cloud Logging)
    assert run["logging.googleapis.com/sourceLocation"]["file"].endswith("runner.py")
    assert "readings_clean: success" in run["message"]
    # -v is INFO: no DEBUG lines
    assert "DEBUG" not in {line["severity"] for line in lines}


def test_with_json_logs_every_stderr_line_parses(iot, capsys):
    """A collector reading stderr meets JSON only: the run's progress lines and the final
    `error:` line become records of pipectl.console (severity from the prefix); stdout keeps
    the summary table; stderr is unwrapped again after the command."""
    import sys

    before = sys.stderr
    assert main(["-p", str(iot), "--log-format", "json", "run", "--date", DAY, "--full"]) == 0
    captured = capsys.readouterr()
    lines = [json.loads(line) for line in captured.err.splitlines()]  # every line, not only those with "{"
    progress = [line for line in lines if line["logger"] == "pipectl.console"]
    assert any("readings_clean" in line["message"] and line["severity"] == "INFO" for line in progress), lines
    assert all(line["correlation_id"] and line[LABELS]["partition"] == DAY for line in progress if "triggered" in line["message"])
    assert "PHASE" in captured.out and not captured.out.lstrip().startswith("{")
    assert main(["-p", str(iot), "--log-format", "json", "-t", "nope", "run", "--date", DAY]) == 1
    [error] = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
    assert error["severity"] == "ERROR" and error["message"].startswith("error: unknown target 'nope'")
    assert sys.stderr is before


def test_vv_is_debug_and_text_lines_show_the_context(iot, capsys):
    assert main(["-p", str(iot), "-vv", "run", "--date", DAY, "--full", "--json", "-q"]) == 0
    err = capsys.readouterr().err
    debug = [line for line in err.splitlines() if " DEBUG " in line and "framework.run.runner" in line]
    assert debug and "processor=readings_clean" in "\n".join(debug) and f"partition={DAY}" in debug[0]


def test_default_level_prints_no_info_and_log_level_wins_over_v(iot, capsys):
    assert main(["-p", str(iot), "run", "--date", DAY, "--full", "--json", "-q"]) == 0
    assert "readings_clean: success" not in capsys.readouterr().err
    assert main(["-p", str(iot), "-vv", "--log-level", "error", "run", "--date", DAY, "--full", "--json", "-q"]) == 0
    assert "readings_clean: success" not in capsys.readouterr().err
    assert main(["--log-level", "loud", "ls"]) == 2
    assert "--log-level" in capsys.readouterr().err


def test_a_failure_is_an_error_line_with_its_processor(iot, capsys, tmp_path):
    sql = iot / "sql" / "readings_clean.sql"
    original = sql.read_text()
    sql.write_text(original.replace("FROM", "FROM no_such_table_x, ", 1))
    try:
        assert main(["-p", str(iot), "--log-format", "json", "run", "--date", DAY, "--full", "--json", "-q"]) == 1
    finally:
        sql.write_text(original)
    errors = [line for line in _json_lines(capsys.readouterr().err) if line["severity"] == "ERROR"]
    assert any(line.get("processor") == "readings_clean" and "no_such_table_x" in line["message"] for line in errors), errors


def test_configure_is_idempotent_and_the_context_nests(capsys):
    configure(logging.INFO, "json")
    configure(logging.INFO, "json")
    assert sum(1 for h in logging.getLogger().handlers if getattr(h, "pipectl", False)) == 1
    with log_context(correlation_id="c1", partition="p"):
        with log_context(processor="x", partition=None):
            assert current_context() == {"correlation_id": "c1", "partition": "p", "processor": "x"}
            logging.getLogger("framework.test").info("hello")
        assert current_context() == {"correlation_id": "c1", "partition": "p"}
    assert current_context() == {}
    line = _json_lines(capsys.readouterr().err)[-1]
    assert line["message"] == "hello" and line["processor"] == "x" and line[LABELS]["correlation_id"] == "c1"
    assert level_of(0) == logging.WARNING and level_of(1) == logging.INFO and level_of(3) == logging.DEBUG
    assert level_of(2, "error") == logging.ERROR
