"""After an edit to transform files only, `pipectl validate` checks those processors' SQL
again and keeps the rest of the recorded result; any other change checks everything.

Every case compares the diagnostics (items and notes, in order) with a full run that reads
no record, and says which path was taken: the processors re-checked, or a full SQL check."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

from framework import validation
from framework.cli import main
from framework.sql import checks, environment
from framework.validation import replay

REPO = Path(__file__).resolve().parents[3]


@pytest.fixture
def root(tmp_path, monkeypatch):
    monkeypatch.delenv("PIPECTL_NO_CACHE", raising=False)
    sys.path.insert(0, str(REPO / "bench"))
    try:
        from gen_manifest import generate  # 15 processors, every transform distinct, 2-6 joined inputs
    finally:
        sys.path.remove(str(REPO / "bench"))
    return generate(tmp_path / "proj", 15)


@pytest.fixture
def paths(monkeypatch):
    """Which path each validate took: processors re-checked alone, or full SQL checks."""
    seen: dict[str, list] = {"rechecked": [], "full": []}
    recheck, full = checks.recheck_transforms, checks.check_rendered_sql

    def spy_recheck(project, names):
        seen["rechecked"].append(sorted(names))
        return recheck(project, names)

    def spy_full(*args, **kwargs):
        seen["full"].append(1)
        return full(*args, **kwargs)

    monkeypatch.setattr(checks, "recheck_transforms", spy_recheck)
    monkeypatch.setattr(checks, "check_rendered_sql", spy_full)
    return seen


def _lists(diags) -> tuple[list, list]:
    return [d.to_dict() for d in diags.items], [d.to_dict() for d in diags.notes]


def _edit(root: Path, rel: str, old: str, new: str) -> None:
    path = root / rel
    text = path.read_text()
    assert old in text, (rel, old)
    path.write_text(text.replace(old, new, 1))


def _checked(root: Path, paths: dict) -> tuple[list, list]:
    """validate with the record, compared with a full run; the diagnostics."""
    paths["rechecked"].clear()
    paths["full"].clear()
    got = _lists(validation.validate(root, replay=True))
    taken = {k: list(v) for k, v in paths.items()}
    environment._environment.cache_clear()  # Jinja environments live per process; a CLI run is one
    assert got == _lists(validation.validate(root))  # a full run, no record read or written
    paths.update(taken)  # what the run under test did, not the comparison
    return got


def _codes(got: tuple[list, list], proc: str) -> set[str]:
    return {d["code"] for d in got[0] + got[1] if f"'{proc}'" in d["message"]}


EDITS = [
    # (file, old, new, code the edited processor then reports or None when clean)
    ("sql/precompute_p00001.sql", "t1.m1 >", "t1.nope >", "unknown-column"),
    ("sql/precompute_p00001.sql", "t1.nope >", "t1.m1 >", None),
    ("sql/analytics_p00000.sql", "FROM", "FROM (", "sql-parse"),
    ("sql/export_p00002.sql", "FROM {{", "FROM {{ ref('nowhere') }} z, {{", "sql-render"),
    ("sql/raw_p00001.sql", "SELECT", "{% if %}SELECT", "sql-render"),
    ("sql/raw_p00001.sql", "{% if %}SELECT", "SELECT {% if dialect == 'duckdb' %}(({% endif %}", "sql-parse"),  # both dialects rendered
    ("sql/predictions_p00000.sql", " AS m4", " + ARRAY_LENGTH(ARRAY_AGG(t0.item_id IGNORE NULLS LIMIT 2)) AS m4", "sql-parse"),
]


def test_an_edited_transform_is_checked_again_alone(root, paths):
    first = _checked(root, paths)
    assert first[0] == [] and paths["full"] == [1]
    for rel, old, new, code in EDITS:
        _edit(root, rel, old, new)
        got = _checked(root, paths)
        proc = Path(rel).stem
        assert paths["rechecked"] == [[proc]] and paths["full"] == [], rel
        assert code in _codes(got, proc) if code else _codes(got, proc) == set()
    # two files in one edit, then every error fixed at once
    _edit(root, "sql/raw_p00000.sql", "FROM", "FROM (")
    _edit(root, "sql/raw_p00002.sql", "FROM", "FROM (")
    got = _checked(root, paths)
    assert paths["rechecked"] == [["raw_p00000", "raw_p00002"]]
    assert "sql-parse" in _codes(got, "raw_p00000") and "sql-parse" in _codes(got, "raw_p00002")


def test_the_cli_output_after_an_edit_is_byte_identical_to_a_full_run(root, paths, capsys, monkeypatch):
    assert main(["-p", str(root), "validate", "--format", "json"]) == 0
    capsys.readouterr()
    paths["full"].clear()
    _edit(root, "sql/precompute_p00002.sql", " AS m3", " + t0.v9 AS m3")
    assert main(["-p", str(root), "validate", "--format", "json"]) == 1
    incremental = capsys.readouterr().out
    assert paths["rechecked"] == [["precompute_p00002"]] and paths["full"] == []
    monkeypatch.setenv("PIPECTL_NO_CACHE", "1")
    environment._environment.cache_clear()
    assert main(["-p", str(root), "validate", "--format", "json"]) == 1
    assert capsys.readouterr().out == incremental and "v9" in incremental


def test_an_edit_to_processors_yaml_checks_every_transform(root, paths):
    """Renaming an upstream column breaks a downstream transform that did not change."""
    _checked(root, paths)
    _edit(root, "processors.yaml", "table: analytics_p00001\n      columns:\n        - {name: day, type: DATE, mode: REQUIRED}\n"
          "        - {name: item_id, type: STRING, mode: REQUIRED}\n        - {name: m0, type: FLOAT64}\n        - {name: m1,",
          "table: analytics_p00001\n      columns:\n        - {name: day, type: DATE, mode: REQUIRED}\n"
          "        - {name: item_id, type: STRING, mode: REQUIRED}\n        - {name: m0, type: FLOAT64}\n        - {name: m1x,")
    _edit(root, "processors.yaml", "change_detection: {columns: [m0, m1, m2]}\n    transform: {sql: sql/analytics_p00001.sql}",
          "change_detection: {columns: [m0, m1x, m2]}\n    transform: {sql: sql/analytics_p00001.sql}")
    got = _checked(root, paths)
    assert paths["full"] == [1] and paths["rechecked"] == []
    downstream = [d for d in got[0] if d["code"] == "unknown-column" and "'precompute_p00001'" in d["message"]]
    assert downstream and "m1" in downstream[0]["message"]
    assert "transform-columns" in _codes(got, "analytics_p00001")  # its own SQL still returns m1


def test_an_edit_to_topics_yaml_checks_everything(root, paths):
    _checked(root, paths)
    _edit(root, "sql/raw_p00000.sql", "FROM", "FROM (")
    _edit(root, "topics.yaml", "topics:", "# reviewed\ntopics:")
    got = _checked(root, paths)
    assert paths["full"] == [1] and paths["rechecked"] == []
    assert "sql-parse" in _codes(got, "raw_p00000")
    _edit(root, "topics.yaml", "consumers: [external:ops]", "consumers: [external:ops]\n  - name: orphan\n    contract: completion")
    got = _checked(root, paths)
    assert paths["rechecked"] == [] and any("orphan" in d["message"] for d in got[0])


def test_an_edit_to_a_template_checks_everything(root, paths):
    _checked(root, paths)
    _edit(root, "sql/raw_p00000.sql", "FROM", "FROM (")  # a transform edited too: still a full check
    (root / "templates").mkdir()
    (root / "templates" / "detect.sql.j2").write_text("SELECT 1 FROM {{ nonsense(\n")
    environment._environment.cache_clear()
    got = _checked(root, paths)
    assert paths["full"] == [1] and paths["rechecked"] == []
    assert any("detect.sql.j2" in d["message"] for d in got[0]) and "sql-parse" in _codes(got, "raw_p00000")


def test_a_change_to_pipectl_checks_everything(root, paths, monkeypatch):
    _checked(root, paths)
    _edit(root, "sql/raw_p00000.sql", "FROM", "FROM (")
    monkeypatch.setattr(replay, "_code_hash", lambda: "another pipectl")
    got = _checked(root, paths)
    assert paths["full"] == [1] and paths["rechecked"] == []
    assert "sql-parse" in _codes(got, "raw_p00000")


def test_a_deleted_transform_checks_everything(root, paths):
    _checked(root, paths)
    (root / "sql" / "export_p00001.sql").unlink()
    got = _checked(root, paths)  # the rules run again (the error then skips the SQL checks)
    assert paths["rechecked"] == []
    assert "missing-transform" in _codes(got, "export_p00001")


def test_with_rule_errors_the_sound_processors_are_still_rechecked(root, paths):
    """A rule error (an unknown input) leaves the other processors' SQL checked; an edit to
    one of their transforms is re-checked alone, the rule error kept."""
    _edit(root, "processors.yaml", "inputs: [raw_p00000, raw_p00001, raw_p00002]", "inputs: [raw_p00000, raw_p00001, raw_p0000x]")
    first = _checked(root, paths)
    assert any(d["code"] == "unknown-input" for d in first[0]) and paths["full"] == [1]
    _edit(root, "sql/raw_p00001.sql", "FROM", "FROM (")
    got = _checked(root, paths)
    assert paths["rechecked"] == [["raw_p00001"]] and paths["full"] == []
    assert "sql-parse" in _codes(got, "raw_p00001") and any(d["code"] == "unknown-input" for d in got[0])


def test_without_sql_checks_a_transform_edit_changes_nothing(root, paths):
    first = _lists(validation.validate(root, check_sql=False, replay=True))
    _edit(root, "sql/precompute_p00001.sql", "t1.m1 >", "t1.nope >")
    again = _lists(validation.validate(root, check_sql=False, replay=True))
    assert again == first == _lists(validation.validate(root, check_sql=False))
    assert paths["rechecked"] == [] and paths["full"] == []


def test_a_failing_recheck_falls_back_to_checking_everything(root, paths, monkeypatch, caplog):
    _checked(root, paths)
    _edit(root, "sql/raw_p00000.sql", "FROM", "FROM (")

    def broken(project, names):
        raise RuntimeError("a bug in the re-check")

    monkeypatch.setattr(checks, "recheck_transforms", broken)
    got = _lists(validation.validate(root, replay=True))
    assert "sql-parse" in _codes(got, "raw_p00000") and "a bug in the re-check" in caplog.text
