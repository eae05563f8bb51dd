"""Render library results for humans (text) or machines (JSON, JUnit XML, SARIF).

The library never prints; commands pass results here.
"""
from __future__ import annotations

import json
import re
from typing import Iterable

from framework.manifest.diagnostics import Diagnostic

# Characters XML 1.0 forbids (C0 controls but TAB/LF/CR, surrogates, U+FFFE/U+FFFF), and the
# C0/C1 controls that a terminal would interpret: shown as visible escapes, never raw.
_NOT_XML = re.compile("[^\x09\x0a\x0d\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff\ufffe\uffff]")


def _escape(match: re.Match) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def printable(text: str) -> str:
    """Text safe for a terminal, a log line and XML: control characters become ``\\x1b``."""
    return _CONTROL.sub(_escape, text)


def xml_text(text: str) -> str:
    """What XML 1.0 can hold: forbidden characters become visible escapes (JUnit output)."""
    return _NOT_XML.sub(_escape, printable(text))


def diagnostics_text(diags: Iterable[Diagnostic], summary: bool = True, notes: Iterable[Diagnostic] = ()) -> str:
    items = list(diags)
    lines = [printable(str(d)) for d in items] + [printable(str(n)) for n in notes]
    if summary:
        errors = sum(1 for d in items if d.severity == "error")
        warnings = len(items) - errors
        lines.append(f"{errors} error(s), {warnings} warning(s)" if items else "ok: no problems found")
    return "\n".join(lines)


def diagnostics_json(diags: Iterable[Diagnostic], extra: dict | None = None) -> str:
    items = [d.to_dict() for d in diags]
    doc = {"diagnostics": items, "errors": sum(1 for d in items if d["severity"] == "error"),
           "warnings": sum(1 for d in items if d["severity"] == "warning")}
    doc.update(extra or {})
    return json.dumps(doc, indent=2)


def diagnostics_junit(diags: Iterable[Diagnostic]) -> str:
    """One testcase per diagnostic (errors as failures), so CI shows them as test results;
    a clean project yields one passing testcase."""
    from xml.sax.saxutils import escape, quoteattr  # imports urllib.request: only for --format junit

    items = list(diags)
    failures = sum(1 for d in items if d.severity == "error")
    cases = []
    for d in items:
        name = quoteattr(xml_text(f"{d.code} {d.location}"))
        body = escape(xml_text(str(d)))
        file = quoteattr(xml_text(d.location.file))
        if d.severity == "error":
            cases.append(f'    <testcase classname="pipectl.validate" name={name} file={file} line="{d.location.line}">\n'
                         f'      <failure message={quoteattr(xml_text(d.message))} type={quoteattr(xml_text(d.code))}>{body}</failure>\n    </testcase>')
        else:
            cases.append(f'    <testcase classname="pipectl.validate" name={name} file={file} line="{d.location.line}">\n'
                         f'      <system-out>{body}</system-out>\n    </testcase>')
    if not items:
        cases.append('    <testcase classname="pipectl.validate" name="manifests"/>')
    return ('<?xml version="1.0" encoding="UTF-8"?>\n'
            f'<testsuites>\n  <testsuite name="pipectl validate" tests="{max(len(items), 1)}" failures="{failures}" errors="0">\n'
            + "\n".join(cases) + "\n  </testsuite>\n</testsuites>")


def diagnostics_sarif(diags: Iterable[Diagnostic], version: str) -> str:
    """SARIF 2.1.0, the format GitHub code scanning uses to annotate pull requests."""
    items = list(diags)
    rules = sorted({d.code for d in items})
    results = []
    for d in items:
        region = {"startLine": max(d.location.line, 1), "startColumn": max(d.location.column, 1)}
        text = d.message + (f" ({d.hint})" if d.hint else "")
        results.append({
            "ruleId": d.code,
            "level": "error" if d.severity == "error" else "warning",
            "message": {"text": text},
            "locations": [{"physicalLocation": {"artifactLocation": {"uri": d.location.file}, "region": region}}],
        })
    doc = {
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {"name": "pipectl", "version": version, "informationUri": "https://pipectl.dev",
                                "rules": [{"id": r, "name": r} for r in rules]}},
            "results": results,
        }],
    }
    return json.dumps(doc, indent=2)
