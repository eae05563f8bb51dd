"""Seeded fuzz of the example manifests through `validate` (SQL checks on): no uncaught
exception or internal error, every error located (file:line), JSON/JUnit/SARIF valid, and
each case under a time limit. CI-sized here; `python bench/fuzz_manifests.py --cases 10000`
is the long run (PIPECTL_FUZZ_CASES raises this one too)."""
from __future__ import annotations

import os
import random
import shutil

import pytest

from fuzz import check_validate, example_manifests, mutate
from projects import REPO

CASES = int(os.environ.get("PIPECTL_FUZZ_CASES", "100"))


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    root = tmp_path_factory.mktemp("fuzz") / "proj"
    root.mkdir()
    shutil.copytree(REPO / "pipelines", root / "pipelines", ignore=shutil.ignore_patterns("__pycache__"))
    return root


def test_fuzzed_manifests_never_escape(project):
    originals = example_manifests(REPO)
    rng = random.Random(20261130)
    failures = []
    errors = 0
    for i in range(CASES):
        mutant = mutate(rng, originals)
        outcome = check_validate(project, mutant, time_limit=30)
        errors += outcome.errors
        if outcome.kind != "ok":
            failures.append(f"case {i} {outcome.kind}: {outcome.detail[-1500:]}")
    assert not failures, "\n\n".join(failures[:5])
    assert errors > CASES  # the mutants are broken: validate must say so, located


def test_the_unmutated_example_is_clean(project):
    from fuzz import Mutant

    outcome = check_validate(project, Mutant(dict(example_manifests(REPO))))
    assert outcome.kind == "ok" and outcome.errors == 0
