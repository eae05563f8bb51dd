"""A seeded mutator of manifests and envelopes, and the checks every mutant must pass.

Shared by the suite (a CI-sized run, tests/unit/manifest/test_fuzz.py) and the long run
(bench/fuzz_manifests.py --cases 10000). Mutations are the classes hostile or careless
input takes: deleted and duplicated lines, wrong types, YAML 1.1 words, unicode and control
characters, bytes that are not UTF-8, tags, anchors and aliases (recursive, bombs), extra
documents, broken indentation, truncation, renamed references (``players``, ``Player``).

A case passes when ``validate`` returns (no exception), within the time limit, every error
is located (file and line), and the JSON, JUnit and SARIF renderings parse.
"""
from __future__ import annotations

import json
import random
import re
import signal
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable
from xml.etree import ElementTree

HOSTILE_VALUES = [
    "yes", "no", "on", "~", "''", '""', "null", "-1", "0", "1e999", ".nan", "0x1F", "1_000", "2025-13-01",
    "[]", "{}", "[1, 2", "{a: 1", "'unterminated", "!foo x", "!!int abc", "!!str 5", "!!binary aGk=",
    "&a [1, *a]", "*nowhere", "&x 1", "<<: {a: 1}", "é€😀", "\u202eevil", "\u00a0", "a\x1bb", "a\x07b", "x\x00y",
    "\t", "'" + "x" * 5000 + "'", "player", "players", "Player", "team", "raw", "analytics", "phase:raw",
    "STRING", "INT64", "NOPE", "true", "False", "[player, team]", "{name: x, type: STRING}", "- a",
    "|\n  block", ">-", "? complex", "@reserved", "`tick", "%directive", "a: b: c",
    '"a\\x1bb"', '"nul\\0"', '"bell\\a"', '"\\uFFFE"', '"]]>"', '"<x>&amp;"', '"\\e[31m"',
]

BOMB = ("lol0: &l0 [x, x, x, x, x, x, x, x, x]\n"
        + "".join(f"lol{i}: &l{i} [" + ", ".join([f"*l{i - 1}"] * 9) + "]\n" for i in range(1, 9)))

_VALUE = re.compile(r"(:\s+|-\s+|\[|,\s*)([^\s,\[\]{}#][^,\[\]{}#\n]*)")
_NAME = re.compile(r"\b[a-z][a-z0-9_]{3,}\b")


def _lines(text: str) -> list[str]:
    return text.splitlines(keepends=True)


def _m_delete_line(rng: random.Random, text: str) -> str:
    lines = _lines(text)
    if lines:
        del lines[rng.randrange(len(lines))]
    return "".join(lines)


def _m_duplicate_line(rng: random.Random, text: str) -> str:
    lines = _lines(text)
    if lines:
        i = rng.randrange(len(lines))
        lines.insert(i, lines[i])
    return "".join(lines)


def _m_value(rng: random.Random, text: str) -> str:
    spots = list(_VALUE.finditer(text))
    if not spots:
        return text
    m = rng.choice(spots)
    return text[:m.start(2)] + rng.choice(HOSTILE_VALUES) + text[m.end(2):]


def _m_rename(rng: random.Random, text: str) -> str:
    """Rename one reference (or every use of a name): the contract-drift class of errors."""
    names = _NAME.findall(text)
    if not names:
        return text
    old = rng.choice(names)
    new = rng.choice([old + "s", old.capitalize(), old[:-1], old.upper(), "players", "Player", old + "_v2"])
    if rng.random() < 0.5:
        return text.replace(old, new)
    return re.sub(rf"\b{re.escape(old)}\b", new, text, count=1)


_REFERENCE = re.compile(
    r"^(\s*(?:-\s+)?(?:entity|phase|processor|source|via|from|to|mapping|consumer|dead_letter_topic|completion_topic"
    r"|trigger_topic|table|key|name|type|mode|partition_by|task_topic|sql|python|rule|from_column|to_column):[ \t]*)(\S[^#\n]*)$",
    re.M)


def _m_reference(rng: random.Random, text: str) -> str:
    """Point one reference somewhere else: a near name, another kind's name, a class name."""
    spots = list(_REFERENCE.finditer(text))
    if not spots:
        return text
    m = rng.choice(spots)
    old = m.group(2).strip()
    names = [s.group(2).strip() for s in spots]
    new = rng.choice([old + "s", old.capitalize(), old[:-1], "players", "Player", rng.choice(names), old + "_v2", ""])
    return text[:m.start(2)] + new + text[m.end(2):]


def _m_char(rng: random.Random, text: str) -> str:
    pos = rng.randrange(len(text) + 1)
    return text[:pos] + rng.choice(["\x00", "\x07", "\x1b", "\x7f", "\t", "\ufeff", "\u2028", "\x85", "é", "😀", ":", "#", "&", "*", "!", "|", "'", '"']) + text[pos:]


def _m_indent(rng: random.Random, text: str) -> str:
    lines = _lines(text)
    if lines:
        i = rng.randrange(len(lines))
        lines[i] = ("  " + lines[i]) if rng.random() < 0.5 else lines[i][2:] if lines[i].startswith("  ") else lines[i]
    return "".join(lines)


def _m_truncate(rng: random.Random, text: str) -> str:
    return text[: rng.randrange(len(text) + 1)]


def _m_document(rng: random.Random, text: str) -> str:
    return text + rng.choice(["---\n", "---\nversion: 1\n", "...\n---\n- a\n", "--- !!str x\n"])


def _m_alias(rng: random.Random, text: str) -> str:
    choice = rng.randrange(4)
    if choice == 0:
        return text + BOMB
    if choice == 1:
        return text + "loop: &loop {a: *loop}\n"
    lines = _lines(text)
    i = rng.randrange(len(lines)) if lines else 0
    snippet = "x_anchor: &anc {k: [1, 2, 3]}\nx_use: *anc\n" if choice == 2 else "y: *undefined_anchor\n"
    lines.insert(i, snippet)
    return "".join(lines)


def _m_type(rng: random.Random, text: str) -> str:
    """A list where a mapping belongs, a mapping where a list belongs, a number for a name."""
    keys = re.findall(r"^(\s*)(-\s+)?([a-z_]+):", text, flags=re.M)
    if not keys:
        return text
    indent, dash, key = rng.choice(keys)
    replacement = rng.choice(["5", "[1, 2]", "{a: b}", "''", "~", "[[[]]]", "true"])
    pattern = re.compile(rf"^({re.escape(indent)}{re.escape(dash or '')}{key}:)(.*)$", re.M)
    return pattern.sub(lambda m: f"{m.group(1)} {replacement}", text, count=1)


# weighted towards mutations that keep the YAML well-formed, so most cases reach the schema,
# the resolver, the graph rules and the SQL checks rather than stopping at the parser
MUTATORS: list[Callable[[random.Random, str], str]] = (
    [_m_reference] * 6 + [_m_rename] * 2 + [_m_value] * 2 + [_m_type] * 2 + [_m_delete_line, _m_duplicate_line]
    + [_m_char, _m_indent, _m_truncate, _m_document, _m_alias]
)


@dataclass
class Mutant:
    """One fuzz case: the files to write (text or raw bytes) and what was done."""

    files: dict[str, str | bytes]
    steps: list[str] = field(default_factory=list)


def mutate(rng: random.Random, originals: dict[str, str], max_steps: int = 3) -> Mutant:
    files: dict[str, str | bytes] = dict(originals)
    steps = []
    for _ in range(rng.randint(1, max_steps)):
        name = rng.choice(sorted(originals))
        fn = rng.choice(MUTATORS)
        text = files[name]
        assert isinstance(text, str)
        files[name] = fn(rng, text)
        steps.append(f"{name}:{fn.__name__[3:]}")
    if rng.random() < 0.03:  # a byte that is not UTF-8
        name = rng.choice(sorted(originals))
        raw = str(files[name]).encode("utf-8", "surrogatepass")
        pos = rng.randrange(len(raw) + 1)
        files[name] = raw[:pos] + rng.choice([b"\xe9", b"\xff", b"\xc3", b"\x80"]) + raw[pos:]
        steps.append(f"{name}:latin1")
    return Mutant(files, steps)


# ------------------------------------------------------------------ checking one case
class Hang(Exception):
    """The case ran past its time limit."""


@dataclass
class Outcome:
    kind: str            # ok | traceback | internal | hang | unlocated | bad-output
    detail: str = ""
    errors: int = 0


def _alarm(signum: int, frame: Any) -> None:
    raise Hang()


def check_validate(root: Path, mutant: Mutant, time_limit: float = 10, check_sql: bool = True) -> Outcome:
    """Write the mutant into ``root`` and validate it; classify what happened.

    The limit is on the CPU time of this process (``ITIMER_PROF``), not the wall clock: a
    hang is the program's, and a machine shared with other work must not turn a 2 s case
    into a false one."""
    from framework import console
    from framework.validation import validate

    for name, content in mutant.files.items():
        path = root / name
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8", errors="surrogatepass")
    previous = signal.signal(signal.SIGPROF, _alarm)
    signal.setitimer(signal.ITIMER_PROF, time_limit)
    try:
        diags = validate(root, check_sql=check_sql)
        items = diags.sorted()
        rendered = {"json": console.diagnostics_json(items), "junit": console.diagnostics_junit(items),
                    "sarif": console.diagnostics_sarif(items, "fuzz")}
    except Hang:
        return Outcome("hang", " ".join(mutant.steps))
    except Exception:  # the point of the fuzzer: any escape is a finding, reported with its steps
        return Outcome("traceback", " ".join(mutant.steps) + "\n" + traceback.format_exc())
    finally:
        signal.setitimer(signal.ITIMER_PROF, 0)
        signal.signal(signal.SIGPROF, previous)
    for d in diags.errors:
        if d.code == "internal-error":
            return Outcome("internal", f"{' '.join(mutant.steps)}: {d}", len(diags.errors))
        if not d.location.file or d.location.line < 1:
            return Outcome("unlocated", f"{' '.join(mutant.steps)}: {d}", len(diags.errors))
    try:
        json.loads(rendered["json"])
        json.loads(rendered["sarif"])
        ElementTree.fromstring(rendered["junit"].encode("utf-8"))
    except (ValueError, ElementTree.ParseError) as exc:
        return Outcome("bad-output", f"{' '.join(mutant.steps)}: {exc}", len(diags.errors))
    return Outcome("ok", "", len(diags.errors))


def example_manifests(repo: Path) -> dict[str, str]:
    return {name: (repo / name).read_text(encoding="utf-8") for name in ("processors.yaml", "topics.yaml")}


# ------------------------------------------------------------------ envelopes
ENVELOPE_VALUES: list[Any] = [
    None, "", "x", "players", "Player", "player", "raw", "analytics", "2026-13-01", "tomorrow", 0, -1, 2**63, 1.5,
    float("inf"), True, [], {}, [None], {"a": {"b": {"c": []}}}, "é\x00\x1b", "x" * 10_000, ["lebronjames"] * 3,
    {"player": ["a", 1, None]}, {"players": ["a"]}, {"Player": ["a"]}, {"player": {"ref": "r", "count": 1}},
    {"player": {"ref": "", "count": -1}}, {"player": list(range(2000))}, {"": ["a"]}, "2026-11-28",
]


def mutate_envelope(rng: random.Random, base: dict[str, Any]) -> tuple[Any, str]:
    """A completion envelope with 1-3 fields deleted, retyped, renamed or set to a hostile
    value; sometimes not an object or not JSON at all."""
    roll = rng.random()
    if roll < 0.04:
        return rng.choice([b"", b"{", b"null", b"[]", b"\xff\xfe", b'{"a": NaN}', b"1e999", "é".encode("latin-1")]), "raw-bytes"
    env = json.loads(json.dumps(base))
    steps = []
    for _ in range(rng.randint(1, 3)):
        key = rng.choice(sorted(env) + ["entities_changed", "phase", "partition", "kind", "extra_field"])
        action = rng.randrange(4)
        if action == 0 and key in env:
            del env[key]
            steps.append(f"del {key}")
        elif action == 1 and key in env:
            env[key + rng.choice(["_v2", "s", ""])] = env.pop(key)
            steps.append(f"rename {key}")
        else:
            env[key] = rng.choice(ENVELOPE_VALUES)
            steps.append(f"set {key}")
    if rng.random() < 0.5:
        return json.dumps(env, allow_nan=True).encode("utf-8", "surrogatepass"), " ".join(steps)
    return env, " ".join(steps)
