"""Later stages run only on what resolves; a rule that still raises becomes a located error."""
from __future__ import annotations

from framework.errors import Location
from framework.graph.soundness import guarded, sound_processors
from framework.manifest import load_project
from framework.manifest.diagnostics import Diagnostics
from framework.validation import validate
from projects import PROCESSORS, line_of, write_project


def test_unknown_entity_kind_on_a_processor_is_located_with_the_sql_checks_on(tmp_path, monkeypatch):
    text = PROCESSORS.replace("    entity: customer\n    inputs: [orders_raw]\n", "    entity: customers\n    inputs: [orders_raw]\n")
    write_project(tmp_path, text)
    monkeypatch.chdir(tmp_path)
    diags = validate(tmp_path, check_sql=True)
    assert [(d.code, d.location.line) for d in diags.errors] == [("unknown-entity-kind", line_of(text, "- name: customer_totals"))]
    assert "did you mean 'customer'" in diags.errors[0].hint


def test_unsound_processors_and_their_downstream_are_left_out(tmp_path):
    write_project(tmp_path, PROCESSORS.replace("    entity: customer\n    inputs:\n      - source: orders_landing\n",
                                               "    entity: Customer\n    inputs:\n      - source: orders_landing\n"))
    project, _ = load_project(tmp_path)
    assert sound_processors(project) == set()  # orders_raw is broken; both analytics read it
    write_project(tmp_path)
    project, _ = load_project(tmp_path)
    assert sound_processors(project) == set(project.processors)


def test_guarded_turns_an_exception_into_a_located_internal_error():
    diags = Diagnostics()
    assert guarded(diags, "rule x", Location("processors.yaml", 1, 1), lambda: {}["k"]) is None
    (d,) = diags.items
    assert d.code == "internal-error" and "rule x" in d.message and "KeyError" in d.message and d.location.line == 1


def test_unknown_entity_kind_is_reported_even_when_the_shape_is_broken_elsewhere(tmp_path, monkeypatch):
    text = (PROCESSORS.replace("    entity: customer\n    inputs: [orders_raw]\n", "    entity: Customer\n    inputs: [orders_raw]\n")
            .replace("    order: 2\n", "    order: two\n"))
    write_project(tmp_path, text)
    monkeypatch.chdir(tmp_path)
    project, diags = load_project(tmp_path)
    assert project is None
    found = {(d.code, d.location.line) for d in diags.errors}
    assert ("unknown-entity-kind", line_of(text, "entity: Customer")) in found and ("schema", line_of(text, "order: two")) in found
    (kind,) = [d for d in diags.errors if d.code == "unknown-entity-kind"]
    assert kind.hint == "did you mean 'customer'?"
