"""Machine-readable validate output stays valid whatever the manifests hold, and an internal
error still yields a report (never an empty stdout a CI job would upload as nothing)."""
from __future__ import annotations

import json
import xml.etree.ElementTree as ET

import pytest

from framework.cli import main
from framework.console import printable, xml_text
from projects import PROCESSORS, write_project

# a name holding ESC, NUL and U+FFFE via double-quoted YAML escapes: legal YAML, hostile text
HOSTILE = PROCESSORS.replace("  - name: customer_totals\n", '  - name: "cus\\etomer\\0totals\\uFFFE"\n')


def _run(args, capsys):
    code = main(args)
    out = capsys.readouterr()
    return code, out.out, out.err


def _parse(fmt: str, out: str):
    if fmt == "junit":
        return ET.fromstring(out.encode("utf-8"))
    return json.loads(out)


@pytest.mark.parametrize("fmt", ["json", "junit", "sarif"])
def test_control_characters_in_names_keep_reports_valid(tmp_path, capsys, fmt):
    write_project(tmp_path, HOSTILE)
    code, out, _ = _run(["-p", str(tmp_path), "validate", "--no-sql", "--format", fmt], capsys)
    assert code == 1
    _parse(fmt, out)
    assert "\\x1b" in out or "\\u001b" in out  # shown, escaped, not dropped


def test_text_output_escapes_terminal_control_characters(tmp_path, capsys):
    write_project(tmp_path, HOSTILE)
    code, out, _ = _run(["-p", str(tmp_path), "validate", "--no-sql"], capsys)
    assert code == 1 and "\x1b" not in out and "\x00" not in out and "cus\\x1btomer" in out


def test_escaping_helpers():
    assert printable("a\x1b[31mb\x00") == "a\\x1b[31mb\\x00"
    assert xml_text("ok é 😀 \t\n") == "ok é 😀 \t\n"
    assert xml_text("x\ufffey\ud800") == "x\\ufffey\\ud800"


@pytest.mark.parametrize("fmt", ["text", "json", "junit", "sarif"])
def test_an_internal_error_still_prints_a_valid_report(tmp_path, capsys, monkeypatch, fmt):
    write_project(tmp_path)

    def broken(*args, **kwargs):
        raise ZeroDivisionError("division by zero")

    monkeypatch.setattr("framework.validation.validate", broken)
    code, out, err = _run(["-p", str(tmp_path), "validate", "--format", fmt], capsys)
    assert code == 1 and out.strip() and "Traceback" not in out + err
    assert ("internal-error" in out or fmt == "text") and "pipectl failed while validating: ZeroDivisionError" in out
    if fmt == "sarif":
        (result,) = _parse(fmt, out)["runs"][0]["results"]
        assert result["ruleId"] == "internal-error" and result["locations"][0]["physicalLocation"]["region"]["startLine"] == 1
    elif fmt != "text":
        _parse(fmt, out)
