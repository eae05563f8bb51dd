"""The architecture holds: import-linter's contracts (pyproject.toml) pass, no module imports a
private name of another one, and the Cloud Function bundle loads only what the orchestrator
needs. See docs/architecture.md."""
from __future__ import annotations

import ast
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from projects import copy_example

REPO = Path(__file__).resolve().parents[2]


def test_import_contracts_pass() -> None:
    """`lint-imports` with the contracts of pyproject.toml: layers, forbidden arrows, no cycles."""
    try:
        import importlinter  # noqa: F401
    except ImportError:
        pytest.fail("import-linter is not installed: pip install -e '.[dev]' (a dev dependency)")
    lint = "import sys; from importlinter.cli import lint_imports_command; sys.exit(lint_imports_command())"
    done = subprocess.run([sys.executable, "-c", lint, "--no-cache"], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert "0 broken" in done.stdout


def _private_imports(root: Path) -> list[str]:
    found = []
    for path in sorted(root.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "framework":
                for alias in node.names:
                    if alias.name.startswith("_") and not alias.name.startswith("__"):
                        found.append(f"{path.relative_to(root.parent)}:{node.lineno}: from {node.module} import {alias.name}")
    return found


def _private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def _private_members(trees: dict[Path, ast.Module]) -> dict[str, set[Path]]:
    """Private method and attribute names of pipectl's classes -> the modules defining them."""
    owners: dict[str, set[Path]] = {}
    for path, tree in trees.items():
        for cls in (n for n in ast.walk(tree) if isinstance(n, ast.ClassDef)):
            for node in ast.walk(cls):
                if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and _private(node.name):
                    owners.setdefault(node.name, set()).add(path)
                elif (isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store) and _private(node.attr)
                      and isinstance(node.value, ast.Name) and node.value.id == "self"):
                    owners.setdefault(node.attr, set()).add(path)
    return owners


def _private_member_uses(root: Path) -> list[str]:
    """``obj._name`` where ``_name`` is a private member of a class of *another* pipectl
    module (``self``/``cls`` excluded): reaching into another module's object is importing
    its private name by other means (the sweeper once called the engine's ``_after_commit``).
    A module's own classes may share privates with each other."""
    trees = {path: ast.parse(path.read_text(encoding="utf-8"), str(path)) for path in sorted(root.rglob("*.py"))}
    owners = _private_members(trees)
    found: list[tuple[tuple[str, int], str]] = []
    for path, tree in trees.items():
        for node in ast.walk(tree):
            if not (isinstance(node, ast.Attribute) and _private(node.attr) and node.attr in owners):
                continue
            if isinstance(node.value, ast.Name) and node.value.id in ("self", "cls"):
                continue
            if path not in owners[node.attr]:
                defined_in = ", ".join(sorted(str(o.relative_to(root.parent)) for o in owners[node.attr]))
                found.append(((str(path), node.lineno), f"{path.relative_to(root.parent)}:{node.lineno}: {ast.unparse(node)} (private to {defined_in})"))
    return [text for _, text in sorted(found)]


def test_no_module_imports_a_private_name_of_another() -> None:
    """A name shared across modules is public (no leading underscore), so renaming a private
    helper never breaks another module silently: neither ``from m import _x`` nor
    ``obj._x`` on an object of another module's class."""
    assert _private_imports(REPO / "framework") == []
    assert _private_member_uses(REPO / "framework") == []


def test_private_name_scan_finds_a_private_import(tmp_path: Path) -> None:
    pkg = tmp_path / "framework"
    pkg.mkdir()
    (pkg / "a.py").write_text("from framework.sql.render import _secret, public\nfrom framework import __version__\n")
    assert _private_imports(pkg) == ["framework/a.py:1: from framework.sql.render import _secret"]


def test_private_member_scan_finds_a_call_into_another_modules_object(tmp_path: Path) -> None:
    pkg = tmp_path / "framework"
    pkg.mkdir()
    (pkg / "engine.py").write_text(
        "class Engine:\n"
        "    def __init__(self):\n        self._cache = {}\n"
        "    def _after_commit(self):\n        return self._cache\n"
        "class Helper:\n    def use(self, engine):\n        return engine._after_commit()\n")
    (pkg / "sweeper.py").write_text(
        "def sweep(orch, items):\n    items._replace()\n    orch._cache.clear()\n    return orch._after_commit()\n")
    assert _private_member_uses(pkg) == [
        "framework/sweeper.py:3: orch._cache (private to framework/engine.py)",
        "framework/sweeper.py:4: orch._after_commit (private to framework/engine.py)",
    ]


FORBIDDEN_IN_BUNDLE = ("framework.drive", "framework.run", "framework.runtime", "framework.commands", "framework.plan", "framework.validation",
                       "framework.scaffold", "duckdb", "sqlglot")

_BUNDLE_PROBE = """
import json, sys
import main  # the bundle's entry module, as Cloud Functions imports it
from framework.deploy import function
function.orchestrator()          # built on the first message: manifests, backends, alerts
report = function.handle_sweep()  # one sweeper pass
print(json.dumps({"modules": sorted(sys.modules), "decisions": len(report["decisions"])}))
"""


def test_function_bundle_imports_only_what_the_orchestrator_needs(tmp_path: Path) -> None:
    """The entry module of the Cloud Function, imported and run for one sweep in a fresh
    interpreter: no runtime, no CLI, no duckdb/sqlglot in sys.modules (cold starts stay
    short, and the bundle's requirements stay the orchestrator's)."""
    pytest.importorskip("functions_framework")
    project = copy_example(tmp_path / "bundle")
    shutil.copy2(REPO / "framework" / "deploy" / "main.py", project / "main.py")
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": f"{project}:{REPO}", "PIPECTL_TARGET": "local",
           "PIPECTL_PROJECT_DIR": str(project), "HOME": str(tmp_path)}
    done = subprocess.run([sys.executable, "-c", _BUNDLE_PROBE], cwd=project, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-4000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    modules = result["modules"]
    assert "framework.orchestrator.engine" in modules and "framework.deploy.function" in modules  # the probe did run
    loaded = sorted(m for m in modules if any(m == f or m.startswith(f + ".") for f in FORBIDDEN_IN_BUNDLE))
    assert loaded == []


def _contracts() -> list[dict]:
    try:
        import tomllib
    except ImportError:  # Python 3.10
        tomllib = pytest.importorskip("tomli")
    return tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["importlinter"]["contracts"]


def _diagram_layers(text: str) -> list[str]:
    """The boxes of the Mermaid diagram, in the order its chain of arrows visits them."""
    block = re.search(r"```mermaid\n(.*?)```", text, re.S)
    assert block, "docs/architecture.md has no mermaid block"
    labels = dict(re.findall(r'^\s*(\w+)\["([^"]+)"\]\s*$', block.group(1), re.M))
    chain = [line for line in block.group(1).splitlines() if "-->" in line]
    assert len(chain) == 1, "the diagram draws the layers as one chain of arrows"
    return [labels[node.strip()] for node in chain[0].split("-->")]


def test_architecture_page_draws_the_layers_of_the_contract() -> None:
    """docs/architecture.md's diagram lists the same layers, in the same order, with the same
    independent groups and optional layers as the `layers` contract."""
    page = (REPO / "docs" / "architecture.md").read_text(encoding="utf-8")
    contracts = _contracts()
    layers = next(c for c in contracts if c["type"] == "layers")["layers"]
    assert _diagram_layers(page) == layers
    for contract in contracts:
        assert f"`{contract['id']}`" in page, f"contract {contract['id']} is not described in docs/architecture.md"


def test_diagram_parser_reads_the_chain_order() -> None:
    text = '```mermaid\nflowchart TD\n    B["low"]\n    A["top | (x)"]\n    A --> B\n```\n'
    assert _diagram_layers(text) == ["top | (x)", "low"]


# Each arrow issue 14 found in the code, injected into a copy of framework/, and the contract
# that must break. A contract that stopped forbidding one of them (a layer reordered, a
# module moved out of a forbidden list) fails here, not in a review.
FORBIDDEN_ARROWS = [
    ("orchestrator/service.py", "framework.drive.session", "orchestrator-decides"),
    ("orchestrator/service.py", "framework.run.runner", "orchestrator-decides"),
    ("backends/localbus.py", "framework.drive.pipeline", "layers"),
    ("backends/registry.py", "framework.run.runner", "layers"),
    ("graph/rules.py", "framework.backends.protocols", "core-knows-no-backend"),
    ("sql/render.py", "framework.backends.protocols", "core-knows-no-backend"),
    ("config/__init__.py", "framework.backends.registry", "layers"),  # the registry <-> config cycle
    ("orchestrator/status.py", "framework.orchestrator.engine", "no-cycles"),  # engine <-> status
    ("orchestrator/sweeper.py", "framework.orchestrator.engine", "no-cycles"),  # engine <-> sweeper
    ("manifest/model.py", "framework.sql.context", "manifest-at-the-bottom"),
    ("deploy/function.py", "framework.run.runner", "function-bundle"),
    ("run/runner.py", "framework.drive.session", "layers"),  # one processor run knows no driver
]


def _lint(root: Path, contract: str) -> subprocess.CompletedProcess:
    lint = "import sys; from importlinter.cli import lint_imports_command; sys.exit(lint_imports_command())"
    return subprocess.run([sys.executable, "-c", lint, "--no-cache", "--contract", contract], cwd=root,
                          env={"PYTHONPATH": str(root), "PATH": "/usr/bin:/bin"}, capture_output=True, text=True, timeout=120)


def test_each_arrow_of_issue_14_breaks_its_contract(tmp_path: Path) -> None:
    pytest.importorskip("importlinter")
    shutil.copytree(REPO / "framework", tmp_path / "framework", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy2(REPO / "pyproject.toml", tmp_path / "pyproject.toml")
    ids = {c["id"]: c["name"] for c in _contracts()}
    for module, target, contract in FORBIDDEN_ARROWS:
        path = tmp_path / "framework" / module
        original = path.read_text(encoding="utf-8")
        path.write_text(original + f"\nimport {target}  # injected by the test\n", encoding="utf-8")
        try:
            done = _lint(tmp_path, contract)
        finally:
            path.write_text(original, encoding="utf-8")
        assert done.returncode == 1 and f"{ids[contract]} BROKEN" in " ".join(done.stdout.split()), \
            f"{module} -> {target} did not break {contract}:\n{done.stdout[-3000:]}{done.stderr[-2000:]}"
    assert _lint(tmp_path, "layers").returncode == 0  # the copy itself is clean
