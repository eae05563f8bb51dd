"""One YAML reader with one meaning (YAML 1.2 core schema), refusing hostile input located."""
from __future__ import annotations

import math
import tracemalloc

import pytest

from framework.manifest import load_project
from framework.manifest.diagnostics import Diagnostics
from framework.manifest.loader import load_yaml
from framework.manifest import yaml12
from framework.manifest.yaml12 import ALIAS_BUDGET, MAX_DEPTH, core_scalar
from projects import PROCESSORS, TOPICS, line_of, write_project


def _load(tmp_path, text: str | bytes):
    path = tmp_path / "m.yaml"
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    diags = Diagnostics()
    loaded = load_yaml(path, "m.yaml", diags)
    return loaded, diags.items


@pytest.mark.parametrize("text,value", [
    ("true", True), ("False", False), ("TRUE", True), ("yes", "yes"), ("no", "no"), ("on", "on"), ("off", "off"),
    ("y", "y"), ("null", None), ("~", None), ("", None), ("NULL", None), ("12", 12), ("-3", -3), ("+7", 7),
    ("0o17", 15), ("0x1F", 31), ("1.5", 1.5), ("1e3", 1000.0), (".5", 0.5), ("-.inf", -math.inf), (".Inf", math.inf),
    ("1_000", "1_000"), ("0777", 777), ("1:30", "1:30"), ("2025-01-01", "2025-01-01"), ("0b101", "0b101"),
    ("+", "+"), ("-", "-"), (".", "."), ("1.2.3", "1.2.3"),
])
def test_plain_scalars_follow_the_yaml_1_2_core_schema(text, value):
    assert core_scalar(text) == value


def test_nan_is_a_float():
    assert math.isnan(core_scalar(".nan"))


def test_quoted_scalars_are_always_text(tmp_path):
    loaded, items = _load(tmp_path, "a: 'true'\nb: \"12\"\nc: |\n  null\n")
    assert not items and loaded.data == {"a": "true", "b": "12", "c": "null\n"}


def test_yes_where_a_boolean_is_expected_explains_yaml_1_2(tmp_path, monkeypatch):
    text = PROCESSORS.replace("    aliases: [OrdersRawProcessor]\n", "    aliases: [OrdersRawProcessor]\n    enabled: yes\n")
    write_project(tmp_path, text)
    monkeypatch.chdir(tmp_path)
    _, diags = load_project(tmp_path)
    (d,) = diags.items
    assert d.location.line == line_of(text, "enabled: yes")
    assert "YAML 1.2" in d.hint and "true or false" in d.hint


def test_a_second_document_is_refused_at_its_marker(tmp_path, monkeypatch):
    write_project(tmp_path, topics=TOPICS + "---\n")
    monkeypatch.chdir(tmp_path)
    project, diags = load_project(tmp_path)
    assert project is None
    (d,) = diags.items
    assert (d.code, str(d.location)) == ("yaml-documents", f"topics.yaml:{TOPICS.count(chr(10)) + 1}:1")


def test_a_latin1_byte_is_located(tmp_path):
    loaded, (d,) = _load(tmp_path, b"a: 1\nname: caf\xe9\n")
    assert loaded is None and d.code == "encoding" and (d.location.line, d.location.column) == (2, 10)
    assert "0xE9" in d.message and "UTF-8" in d.hint


def test_a_utf8_bom_is_accepted_and_utf16_refused(tmp_path):
    loaded, items = _load(tmp_path, b"\xef\xbb\xbfa: 1\n")
    assert not items and loaded.data == {"a": 1}
    loaded, (d,) = _load(tmp_path, "a: 1\n".encode("utf-16"))
    assert loaded is None and d.code == "encoding"


def test_a_directory_and_an_unreadable_file_are_errors_not_tracebacks(tmp_path, monkeypatch):
    (tmp_path / "processors.yaml").mkdir()
    (tmp_path / "topics.yaml").write_text(TOPICS)
    monkeypatch.chdir(tmp_path)
    project, diags = load_project(tmp_path)
    assert project is None and [d.code for d in diags.items] == ["not-a-file"]

    def denied(self):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr("pathlib.Path.read_bytes", denied)
    diags = Diagnostics()
    assert load_yaml(tmp_path / "topics.yaml", "topics.yaml", diags) is None
    assert diags.items[0].code == "unreadable" and "chmod" in diags.items[0].hint


@pytest.mark.parametrize("char,name", [("\x00", "NUL"), ("\x07", "BEL"), ("\x1b", "ESC"), ("\x7f", "DEL")])
def test_control_characters_are_refused_located(tmp_path, char, name):
    loaded, items = _load(tmp_path, f"a: 1\nname: x{char}y\n")
    assert loaded is None
    (d,) = items
    assert d.code == "yaml-character" and name in d.message and (d.location.line, d.location.column) == (2, 8)


@pytest.mark.parametrize("text,shown", [("a: !foo 1\n", "!foo"), ("a: !!int x\n", "!!int"), ("a: !!str 5\n", "!!str"),
                                        ("a: !!map {b: 1}\n", "!!map"), ("a: !!python/object:os.system x\n", "!!python/object:os.system")])
def test_tags_are_refused_located(tmp_path, text, shown):
    _, items = _load(tmp_path, text)
    assert [(d.code, d.location.line, d.location.column) for d in items] == [("yaml-tag", 1, 4)]
    assert shown in items[0].message


def test_a_recursive_alias_is_refused_without_recursing(tmp_path):
    loaded, items = _load(tmp_path, "a: 1\nd: &d [1, *d]\n")
    assert loaded is None
    (d,) = items
    assert d.code == "yaml-alias" and "recursive" in d.message and (d.location.line, d.location.column) == (2, 11)


def test_an_alias_bomb_is_refused_before_expanding(tmp_path):
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]" for i in range(1, 10)]
    tracemalloc.start()
    loaded, items = _load(tmp_path, "\n".join(lines) + "\n")
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert loaded is None and peak < 20 * 2**20
    (d,) = items
    assert d.code == "yaml-alias" and f"{ALIAS_BUDGET:,}" in d.message and d.location.line == 5


def test_aliases_within_budget_are_shared_and_located_at_the_alias(tmp_path):
    loaded, items = _load(tmp_path, "cols: &c [{name: a}, {name: b}]\nagain: *c\n")
    assert not items and loaded.data["again"] is loaded.data["cols"]
    assert (loaded.loc("again", 1, "name").line, loaded.loc("cols", 1, "name").line) == (2, 1)


def test_deep_nesting_is_refused(tmp_path):
    loaded, items = _load(tmp_path, "a: " + "[" * (MAX_DEPTH + 5) + "]" * (MAX_DEPTH + 5) + "\n")
    assert loaded is None and [d.code for d in items] == ["yaml-depth"]


def test_a_collection_as_key_is_refused(tmp_path):
    loaded, items = _load(tmp_path, "? [a, b]\n: 1\n")
    assert loaded is None and [d.code for d in items] == ["yaml-key"]


def test_a_syntax_error_is_located(tmp_path):
    loaded, (d,) = _load(tmp_path, "a: [1, 2\nb: 3\n")
    assert loaded is None and d.code == "yaml-syntax" and d.location.line >= 1


def test_empty_and_comment_only_files_are_one_error(tmp_path):
    for text in ("", "# nothing\n"):
        loaded, items = _load(tmp_path, text)
        assert loaded is None and [d.code for d in items] == ["empty-file"]


def test_without_locations_the_data_and_the_problems_are_the_same():
    """The loader reads without the location table (most of its memory at 10,000
    processors) and rebuilds it only to print a location: data and reported problems agree."""
    text = "a: 1\nb: [x, {c: yes, d: ~}]\nb2: &k {e: 2}\nf: *k\na: 3\ng: !!str 4\n"
    seen: list[list] = [[], []]
    with_table = yaml12.parse(text, lambda *problem: seen[0].append(problem))
    without = yaml12.parse(text, lambda *problem: seen[1].append(problem), locations=False)
    assert with_table is not None and without is not None
    assert without[0] == with_table[0] and without[1] == {} and len(with_table[1]) > 5
    assert seen[0] == seen[1] and {p[0] for p in seen[0]} == {"duplicate-key", "yaml-tag"}
