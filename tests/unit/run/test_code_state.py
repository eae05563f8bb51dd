"""Code-change awareness: the fingerprint names what changed, and the stored fingerprint of
a partition decides whether its next run reprocesses everything."""
from __future__ import annotations

from framework.backends.sqlite_state import SQLiteStateStore
from framework.project import load
from framework.manifest.fingerprint import processor_fingerprint
from framework.plan.reprocess import pending_reprocessing, reprocess_lines
from framework.run.code_state import CodeState
from projects import PROCESSORS, write_project

DAY = "2025-01-01"


def test_each_part_of_a_processor_changes_its_fingerprint_and_is_named(tmp_path) -> None:
    root = write_project(tmp_path / "p")
    store = SQLiteStateStore(tmp_path / "ledger.sqlite")
    project = load(root)
    state = CodeState(project, store)
    proc = project.processors["customer_totals"]
    before = processor_fingerprint(project, proc).digest
    assert state.changed_reason(proc, DAY) is None  # never ran: nothing to compare
    state.record(proc, DAY, "run-1")
    assert state.changed_reason(proc, DAY) is None
    assert pending_reprocessing(project, store) == []

    edits = {
        "transform changed: sql/customer_totals.sql": lambda: (root / "sql/customer_totals.sql").write_text(
            (root / "sql/customer_totals.sql").read_text().replace("SUM(amount)", "ROUND(SUM(amount), 1)")),
        "output columns changed": lambda: (root / "processors.yaml").write_text(PROCESSORS.replace(
            "        - {name: total, type: FLOAT64}\n    change_detection: {columns: [total]}",
            "        - {name: total, type: NUMERIC}\n    change_detection: {columns: [total]}")),
        "change-detection settings changed": lambda: (root / "processors.yaml").write_text(PROCESSORS.replace(
            "    change_detection: {columns: [total]}", "    change_detection: {columns: [total, customer_id]}")),
    }
    for reason, edit in edits.items():
        write_project(root)  # back to the recorded code
        edit()
        changed = load(root)
        assert processor_fingerprint(changed, changed.processors["customer_totals"]).digest != before
        got = CodeState(changed, store).changed_reason(changed.processors["customer_totals"], DAY)
        assert got is not None and got.startswith(reason), (reason, got)
        (item,) = pending_reprocessing(changed, store)
        assert item.processor == "customer_totals" and item.partitions == [DAY] and item.reason == got
        assert "customer_totals: every entity of 1 partition(s) (2025-01-01)" in "\n".join(reprocess_lines([item]))
    # an unrelated processor's edit does not touch this one's fingerprint
    write_project(root)
    (root / "sql/store_totals.sql").write_text((root / "sql/store_totals.sql").read_text() + "-- comment\n")
    assert CodeState(load(root), store).changed_reason(load(root).processors["customer_totals"], DAY) is None
    store.close()


def test_recording_an_unchanged_fingerprint_takes_no_write_transaction(tmp_path) -> None:
    """The statements SQLite ran (its trace callback): the first record writes inside
    ``BEGIN IMMEDIATE``; recording the same code again only reads; other code writes again."""
    root = write_project(tmp_path / "p")
    store = SQLiteStateStore(tmp_path / "ledger.sqlite")
    project = load(root)
    proc = project.processors["customer_totals"]
    statements: list[str] = []
    store._conn().set_trace_callback(statements.append)
    CodeState(project, store).record(proc, DAY, "run-1")
    assert "BEGIN IMMEDIATE" in statements and any(s.startswith("INSERT INTO docs") for s in statements)
    statements.clear()
    CodeState(project, store).record(proc, DAY, "run-2")
    assert statements and not any(s.startswith(("BEGIN", "INSERT", "DELETE")) for s in statements)
    (root / "sql/customer_totals.sql").write_text((root / "sql/customer_totals.sql").read_text() + "-- edited\n")
    changed = load(root)
    statements.clear()
    CodeState(changed, store).record(changed.processors["customer_totals"], DAY, "run-3")
    assert "BEGIN IMMEDIATE" in statements and any(s.startswith("INSERT INTO docs") for s in statements)
    assert store.get("pipectl_code_state", f"customer_totals|{DAY}")["run_id"] == "run-3"
    store.close()
