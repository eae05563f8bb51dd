"""GCP helpers that need no emulator: lazy SDK imports, label sanitizing, id encoding."""
from __future__ import annotations

import sys

import pytest

from framework.backends.gcp_common import require, sanitize_label_key, sanitize_label_value, sanitize_labels
from framework.errors import BackendError, MissingDependencyError


def test_missing_sdk_names_the_gcp_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "google.cloud.firestore", None)  # makes the import fail
    with pytest.raises(MissingDependencyError) as err:
        require("google.cloud.firestore")
    assert "google.cloud.firestore" in str(err.value) and "[gcp]" in str(err.value)


def test_firestore_store_without_sdk_raises_missing_dependency(monkeypatch: pytest.MonkeyPatch) -> None:
    from framework.backends.firestore import FirestoreStateStore

    monkeypatch.setitem(sys.modules, "google.cloud.firestore", None)
    # the hint names this installation (a checkout, an editable install, a wheel): its extra in any case
    with pytest.raises(MissingDependencyError, match=r"\[gcp\]"):
        FirestoreStateStore("p")


def test_labels_follow_gcp_label_rules() -> None:
    assert sanitize_label_value("NbacGamebookProcessor") == "nbacgamebookprocessor"
    assert sanitize_label_value("corr:2026-01-15T14:00/abc.def") == "corr_2026-01-15t14_00_abc_def"
    assert len(sanitize_label_value("x" * 100)) == 63
    assert sanitize_label_key("9lives") == "k9lives"
    assert sanitize_labels({"Correlation.Id": "ABC"}) == {"correlation_id": "abc"}


def test_firestore_ids_are_legal_and_reversible() -> None:
    from urllib.parse import unquote

    from framework.backends.firestore import encode_id

    for key in ["a/b", ".", "..", "__x__", "ü", "plain"]:
        enc = encode_id(key)
        assert "/" not in enc and enc not in (".", "..") and not enc.startswith("__")
        assert unquote(enc) == key
    with pytest.raises(BackendError):
        encode_id("")
