"""The Firestore state store uses only public google-cloud-firestore API, and the pieces of its
transactions that need no emulator behave as the integration tests rely on.

Why the scan: the exactly-once orchestrator commits through these modules; a private SDK
attribute (``ref._document_path``, ``batch._write_pbs``, ``txn._begin`` were used once) can
vanish in any SDK release and break a transition at run time. The emulator tests
(tests/integration/gcp/test_firestore_conflicts.py) check the behaviour."""
from __future__ import annotations

import ast
from pathlib import Path
from types import SimpleNamespace

import pytest

REPO = Path(__file__).resolve().parents[3]
MODULES = [REPO / "framework" / "backends" / "firestore.py", REPO / "framework" / "backends" / "firestore_txn.py"]


def private_uses(source: str) -> list[str]:
    """``x._name`` where ``x`` is not ``self``/``cls``, and private modules in imports/require()."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Attribute) and node.attr.startswith("_") and not node.attr.startswith("__"):
            if not (isinstance(node.value, ast.Name) and node.value.id in ("self", "cls")):
                found.append(f"line {node.lineno}: {ast.unparse(node)}")
        modules: list[str] = []
        if isinstance(node, ast.ImportFrom) and node.module:
            modules = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        elif isinstance(node, ast.Call) and getattr(node.func, "id", None) == "require":
            modules = [a.value for a in node.args if isinstance(a, ast.Constant) and isinstance(a.value, str)]
        found += [f"line {node.lineno}: {m}" for m in modules
                  if m.startswith("google") and any(p.startswith("_") for p in m.split("."))]
    return found


@pytest.mark.parametrize("module", MODULES, ids=lambda p: p.name)
def test_the_firestore_store_uses_no_private_sdk_name(module: Path) -> None:
    assert private_uses(module.read_text()) == [], f"{module.name} reaches into private names (use public SDK API)"


def test_the_scan_finds_what_it_must() -> None:
    """The check is not vacuous: the private uses that were removed are all reported."""
    old = ("path = ref._document_path\nn = len(batch._write_pbs)\nbatch._add_write_pbs([w])\n"
           "txn._begin()\nself._store._retry\nfrom google.cloud.firestore_v1 import _helpers\n"
           "require('google.cloud.firestore_v1._helpers')\nself._client.collection('c')\n")
    assert len(private_uses(old)) == 7


def test_a_set_over_a_read_document_becomes_a_guarded_full_replacement() -> None:
    firestore = pytest.importorskip("google.cloud.firestore")
    from framework.backends.firestore_txn import OptimisticTransaction

    got = OptimisticTransaction._replacement({"a": 1, "dotted.name": {"x.y": 2}}, frozenset({"a", "old", "b.c"}))
    assert got == {"a": 1, "`dotted.name`": {"x.y": 2}, "old": firestore.DELETE_FIELD, "`b.c`": firestore.DELETE_FIELD}
    assert OptimisticTransaction._replacement({}, frozenset()) == {"`pipectl~unchanged`": firestore.DELETE_FIELD}


def test_the_verification_field_is_never_one_the_document_has() -> None:
    from framework.backends.firestore_txn import _absent_field

    assert _absent_field(["v"]) == "pipectl~unchanged"
    assert _absent_field(["pipectl~unchanged", "pipectl~unchanged~"]) == "pipectl~unchanged~~"


def test_helper_thread_errors_are_translated_with_their_cause() -> None:
    exc = pytest.importorskip("google.api_core.exceptions")
    from framework.backends.firestore_txn import _reraise
    from framework.errors import BackendError

    store = SimpleNamespace(exceptions=exc, location=lambda: "Firestore project p database d")
    aborted = exc.Aborted("contention")
    wrapped = ValueError("Failed to commit transaction in 1 attempts.")
    wrapped.__cause__ = aborted  # what @transactional raises once its attempts are used up
    with pytest.raises(BackendError, match="concurrent writer") as err:
        _reraise(store, wrapped, "commit")
    assert err.value.__cause__ is aborted
    failed_begin = ValueError("Unable to rollback; no transaction in progress.")
    failed_begin.__context__ = exc.ServiceUnavailable("down")  # @transactional's rollback after a failed begin
    with pytest.raises(BackendError, match="begin transaction failed: down"):
        _reraise(store, failed_begin, "begin transaction")
    own = KeyError("not a driver error")
    with pytest.raises(KeyError) as kerr:
        _reraise(store, own, "commit")
    assert kerr.value is own
