"""`pipectl validate` output formats and exit codes, through the real entry point."""
from __future__ import annotations

import json
import subprocess
import sys
import xml.etree.ElementTree as ET

import pytest

from framework.cli import main
from projects import PROCESSORS, write_project


def run(args, capsys):
    code = main(args)
    out = capsys.readouterr()
    return code, out.out, out.err


def test_clean_project_exits_0(tmp_path, capsys):
    write_project(tmp_path)
    code, out, _ = run(["-p", str(tmp_path), "validate", "--no-sql"], capsys)
    assert code == 0 and "ok: no problems found" in out


def test_errors_exit_1_with_located_lines(tmp_path, capsys, monkeypatch):
    write_project(tmp_path, PROCESSORS.replace("inputs: [orders_raw]", "inputs: [order_raw]"))
    monkeypatch.chdir(tmp_path)
    code, out, _ = run(["validate", "--no-sql"], capsys)
    assert code == 1
    assert out.splitlines()[0] == "processors.yaml:53:14: error: processor 'customer_totals' has unknown input 'order_raw' (did you mean 'orders_raw'?)"
    assert out.splitlines()[-1] == "1 error(s), 0 warning(s)"


def test_warnings_exit_0_unless_strict(tmp_path, capsys):
    write_project(tmp_path, PROCESSORS.replace("    inputs: [orders_raw]\n", ""))
    assert run(["-p", str(tmp_path), "validate", "--no-sql"], capsys)[0] == 0
    assert run(["-p", str(tmp_path), "validate", "--no-sql", "--strict"], capsys)[0] == 1


def test_usage_error_exits_2(tmp_path, capsys):
    write_project(tmp_path)
    code, _, err = run(["-p", str(tmp_path), "validate", "--format", "yaml"], capsys)
    assert code == 2 and "Invalid value for '--format'" in err


def test_json_format(tmp_path, capsys):
    write_project(tmp_path, PROCESSORS.replace("inputs: [orders_raw]", "inputs: [order_raw]"))
    code, out, _ = run(["-p", str(tmp_path), "validate", "--no-sql", "--format", "json"], capsys)
    doc = json.loads(out)
    assert code == 1 and doc["errors"] == 1
    (d,) = doc["diagnostics"]
    assert (d["code"], d["line"], d["column"], d["hint"]) == ("unknown-input", 53, 14, "did you mean 'orders_raw'?")


def test_junit_format_is_valid_xml_with_failures(tmp_path, capsys):
    write_project(tmp_path, PROCESSORS.replace("inputs: [orders_raw]", "inputs: [order_raw]"))
    _, out, _ = run(["-p", str(tmp_path), "validate", "--no-sql", "--format", "junit"], capsys)
    suite = ET.fromstring(out).find("testsuite")
    assert suite.get("failures") == "1"
    assert suite.find("testcase/failure").get("type") == "unknown-input"


def test_sarif_format(tmp_path, capsys):
    write_project(tmp_path, PROCESSORS.replace("inputs: [orders_raw]", "inputs: [order_raw]"))
    _, out, _ = run(["-p", str(tmp_path), "validate", "--no-sql", "--format", "sarif"], capsys)
    doc = json.loads(out)
    assert doc["version"] == "2.1.0"
    (result,) = doc["runs"][0]["results"]
    assert result["ruleId"] == "unknown-input" and result["level"] == "error"
    assert result["locations"][0]["physicalLocation"]["region"] == {"startLine": 53, "startColumn": 14}


def test_manifest_error_in_other_commands_prints_error_prefix(tmp_path, capsys, monkeypatch):
    write_project(tmp_path, PROCESSORS.replace("inputs: [orders_raw]", "inputs: [order_raw]"))
    monkeypatch.chdir(tmp_path)
    code, _, err = run(["ls"], capsys)
    assert code == 1
    assert err.splitlines() == ["error: processors.yaml:53:14: processor 'customer_totals' has unknown input 'order_raw' (did you mean 'orders_raw'?)"]


def test_ls_and_graph_select(tmp_path, capsys):
    write_project(tmp_path)
    code, out, _ = run(["-p", str(tmp_path), "ls", "--select", "+customer_totals", "--json"], capsys)
    assert code == 0 and [r["name"] for r in json.loads(out)] == ["orders_raw", "customer_totals"]
    code, _, err = run(["-p", str(tmp_path), "ls", "--select", "nope"], capsys)
    assert code == 2 and "no processor 'nope'" in err


def test_help_does_not_import_heavy_libraries():
    code = ("import sys; from framework.cli import main; main(['--help']);"
            "heavy=[m for m in ('duckdb','sqlglot','google.cloud.bigquery','rich') if m in sys.modules];"
            "print(heavy)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip().splitlines()[-1] == "[]"


@pytest.mark.parametrize("cmd", [["validate", "--no-sql"], ["ls"]])
def test_validate_and_ls_do_not_import_heavy_libraries(tmp_path, cmd):
    # urllib.request (the http/ssl/email stack, ~20 ms) came in through xml.sax.saxutils
    write_project(tmp_path)
    code = ("import sys; from framework.cli import main; main(['-p', sys.argv[1], *sys.argv[2:]]);"
            "print([m for m in ('duckdb','sqlglot','google.cloud.bigquery','rich','urllib.request') if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path), *cmd], capture_output=True, text=True).stdout
    assert out.strip().splitlines()[-1] == "[]"


def test_validate_with_its_sql_checks_imports_no_rich_and_no_engine(tmp_path):
    """sqlglot and jinja2 are what the SQL and lineage checks need; rich (tables, colour,
    progress) and duckdb are not: validate's output is plain located lines."""
    write_project(tmp_path)
    code = ("import sys; from framework.cli import main\ntry:\n    main(['-p', sys.argv[1], 'validate'])\nexcept SystemExit:\n    pass\n"
            "print([m for m in ('rich','duckdb','google.cloud.bigquery','openlineage.client') if m in sys.modules], 'sqlglot' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True).stdout
    assert out.strip().splitlines()[-1] == "[] True"  # the SQL checks did run


def test_a_command_exiting_with_a_message_prints_it_and_exits_1(monkeypatch, capsys):
    """`raise SystemExit("why")` is Python's way to stop with a message and status 1; the
    entry point must not crash on int("why") and lose the message."""
    import types

    import click

    import framework.cli

    @click.command("boom")
    def boom_cmd() -> None:
        raise SystemExit("stopped: the reason")

    module = types.ModuleType("_pipectl_test_commands")
    module.boom_cmd = boom_cmd  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "_pipectl_test_commands", module)
    monkeypatch.setitem(framework.cli.COMMANDS, "boom", "_pipectl_test_commands:boom_cmd")
    code, _, err = run(["boom"], capsys)
    assert code == 1 and "stopped: the reason" in err


def test_ls_selection_that_matches_nothing_lists_nothing(tmp_path, capsys):
    """A known entity kind no processor uses selects nothing; ls used to fall back to
    listing every processor, as if no --select had been given."""
    from projects import PROCESSORS

    write_project(tmp_path, PROCESSORS.replace("  store: {key: store_id, type: STRING}\n",
                                               "  store: {key: store_id, type: STRING}\n  product: {key: product_id, type: STRING}\n"))
    code, out, _ = run(["-p", str(tmp_path), "ls", "--select", "entity:product", "--json"], capsys)
    assert code == 0 and json.loads(out) == []
