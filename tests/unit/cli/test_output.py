"""Human output: colour and bars only on a terminal and never with NO_COLOR; plain text when
piped; one failure printed once (with its cause and fix); "1 processor"; the table explains
EFFICIENCY."""
from __future__ import annotations

import os
import pty
import re
import subprocess
import sys
import threading

import pytest

from framework.cli import main
from framework.scaffold import init_example

DAY = "2025-03-03"
COLOUR = re.compile(r"\x1b\[[0-9;]*(?:3[0-7]|9[0-7]|38;[0-9;]+)m")  # SGR codes that set a foreground colour
ANY_ANSI = re.compile(r"\x1b\[")


@pytest.fixture(scope="module")
def iot(tmp_path_factory):
    root = tmp_path_factory.mktemp("iot-out") / "iot"
    init_example(root, "iot_sensors")
    assert main(["-p", str(root), "sample", "--date", DAY, "--days", "2"]) == 0
    return root


def _on_a_terminal(argv: list[str], env: dict[str, str]) -> str:
    """Run pipectl with stdout and stderr on a pseudo-terminal; everything it wrote."""
    master, slave = pty.openpty()
    chunks: list[bytes] = []

    def drain() -> None:
        while True:
            try:
                data = os.read(master, 65536)
            except OSError:
                return
            if not data:
                return
            chunks.append(data)

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    full_env = {**os.environ, "TERM": "xterm-256color", "COLUMNS": "160", **env}
    full_env.pop("NO_COLOR", None) if "NO_COLOR" not in env else None
    done = subprocess.run([sys.executable, "-c", "import sys; from framework.cli import main; sys.exit(main())", *argv],
                          stdin=slave, stdout=slave, stderr=slave, env=full_env, timeout=300)
    os.close(slave)
    reader.join(timeout=30)
    os.close(master)
    assert done.returncode == 0, b"".join(chunks).decode(errors="replace")[-3000:]
    return b"".join(chunks).decode(errors="replace")


def test_piped_output_has_no_ansi_codes_and_says_1_processor(iot, capsys):
    assert main(["-p", str(iot), "run", "--date", DAY, "--full"]) == 0
    captured = capsys.readouterr()
    assert not ANY_ANSI.search(captured.out + captured.err)
    assert "[alerting] triggered (1 processor)" in captured.err and "(1 processors)" not in captured.err
    assert "[ingest] triggered (2 processors)" in captured.err
    assert "EFFICIENCY: share of a full batch's entity-runs this run skipped" in captured.out


def test_a_terminal_gets_colour_and_no_color_turns_it_off(iot):
    coloured = _on_a_terminal(["-p", str(iot), "run", "--date", DAY, "--full"], {})
    assert COLOUR.search(coloured), coloured[:2000]
    assert "EFFICIENCY" in coloured and "success" in coloured
    plain = _on_a_terminal(["-p", str(iot), "run", "--date", DAY, "--full"], {"NO_COLOR": "1"})
    assert not COLOUR.search(plain), plain[:2000]
    assert "EFFICIENCY" in plain and "success" in plain


def test_json_prints_no_progress_and_no_ansi_even_on_a_terminal(iot):
    out = _on_a_terminal(["-p", str(iot), "run", "--date", DAY, "--full", "--json"], {})
    assert not ANY_ANSI.search(out) and "triggered" not in out and '"correlation_id"' in out


def test_one_failure_is_printed_once_with_its_cause_and_fix(iot, capsys):
    sql = iot / "sql" / "readings_clean.sql"
    original = sql.read_text()
    sql.write_text(original.replace("FROM", "FROM no_such_table_x, ", 1))
    try:
        assert main(["-p", str(iot), "run", "--date", "2025-03-04", "--full"]) == 1
    finally:
        sql.write_text(original)
    captured = capsys.readouterr()
    text = captured.out + captured.err
    assert text.count("no_such_table_x does not exist") == 1, text
    error = next(line for line in captured.err.splitlines() if "no_such_table_x does not exist" in line)
    assert "hint:" in error  # the fix, on the same line as the cause
    assert "alerts raised: " in captured.err and "processor_failed:readings_clean (error)" in captured.err
    assert "status failed" in captured.out


def test_verbose_prints_the_alert_lines_too(iot, capsys):
    sql = iot / "sql" / "readings_clean.sql"
    original = sql.read_text()
    sql.write_text(original.replace("FROM", "FROM no_such_table_y, ", 1))
    try:
        assert main(["-p", str(iot), "-v", "run", "--date", "2025-03-04", "--full"]) == 1
    finally:
        sql.write_text(original)
        from framework.config.logs import configure

        configure()
    err = capsys.readouterr().err
    assert "[ERROR] processor_failed:readings_clean" in err and "alerts raised" not in err
