"""Every path that opens a target sees the target's dataset/topic prefixes, through one
function (framework.backends.registry.target_project).

Two checks: a scan of the package for functions that open a target (backends, bus, config)
without going through ``target_project`` (each exception is listed with its reason, so a new
command that loads the manifests and opens the backends separately fails here), and the
commands the previous check found wrong, run against a prefixed target, naming dev's
resources only."""
from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest

import framework
from framework.cli import main
from framework.scaffold import init_example

OPENERS = {"open_backends", "open_bus", "resolve_target", "load_config", "Backends", "build_backend"}
# (module, function): why it may open a target without target_project
EXEMPT = {
    ("framework/backends/registry.py", "open_backends"): "the opener itself",
    ("framework/backends/registry.py", "open_bus"): "the opener itself",
    ("framework/backends/registry.py", "target_project"): "the one function",
    ("framework/backends/registry.py", "_get"): "builds one backend of an opened target",
    ("framework/config/__init__.py", "resolve_target"): "reads pipectl.yaml",
    ("framework/commands/bus.py", "_open"): "returns the bus; its callers take the project from target_project",
    ("framework/commands/types.py", "complete_target"): "completes target names only",
    ("framework/commands/run.py", "_remote"): "reads the target's execution mode only",
    ("framework/deploy/function.py", "_deployed_target"): "returns the target; orchestrator() applies it",
    ("framework/deploy/function.py", "_backend_factories"): "backend constructors; orchestrator() applies the target",
    ("framework/drive/demo.py", "check_demo"): "reads the backend types only; the demo runs through Session.open",
    ("framework/plan/planner.py", "open_providers"): "its caller passes the project from load_for_target",
    ("framework/ui/views.py", "backends"): "Source.project() gives the project of the same target",
}


def _calls(fn: ast.AST) -> set[str]:
    out = set()
    for node in ast.walk(fn):
        if isinstance(node, ast.Call):
            f = node.func
            out.add(f.id if isinstance(f, ast.Name) else f.attr if isinstance(f, ast.Attribute) else "")
    return out


def test_no_function_opens_a_target_around_target_project():
    base = Path(framework.__file__).parent.parent
    offenders, seen = [], set()
    for path in sorted((base / "framework").rglob("*.py")):
        rel = path.relative_to(base).as_posix()
        for fn in ast.walk(ast.parse(path.read_text())):
            if not isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            calls = _calls(fn)
            if "apply" in calls and any(isinstance(n, ast.Attribute) and n.attr == "apply" and "target" in ast.unparse(n.value)
                                        for n in ast.walk(fn)) and rel != "framework/backends/registry.py":
                offenders.append(f"{rel}:{fn.lineno} {fn.name} calls <target>.apply(...) directly; use target_project")
            if calls & OPENERS and "target_project" not in calls:
                seen.add((rel, fn.name))
                if (rel, fn.name) not in EXEMPT:
                    offenders.append(f"{rel}:{fn.lineno} {fn.name} opens a target ({', '.join(sorted(calls & OPENERS))}) "
                                     "without framework.backends.registry.target_project")
    assert not offenders, "\n".join(offenders)
    assert not set(EXEMPT) - seen, f"stale exemptions: {sorted(set(EXEMPT) - seen)}"


@pytest.fixture(scope="module")
def iot(tmp_path_factory):
    root = tmp_path_factory.mktemp("paths") / "iot"
    init_example(root, "iot_sensors")
    (root / "pipectl.yaml").write_text("version: 1\ntargets:\n  local: {}\n  dev:\n    dataset_prefix: dev_\n    topic_prefix: dev-\n")
    return root


def test_bus_setup_creates_the_targets_topics(iot, capsys):
    assert main(["-p", str(iot), "-t", "dev", "bus", "setup", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    created = report["created_topics"] + report["created_subscriptions"]
    assert created and all(name.startswith("dev-") for name in created), created


def test_validate_dry_run_renders_the_targets_tables(iot, monkeypatch):
    from framework.backends import dry_run

    seen = []
    monkeypatch.setattr(dry_run, "dry_run_project", lambda project, warehouse: seen.append(project) or [])
    main(["-p", str(iot), "-t", "dev", "validate", "--dry-run"])
    assert seen and seen[0].dataset_prefix == "dev_" and seen[0].topic_prefix == "dev-"


def test_ui_source_shows_the_targets_names(iot):
    from framework.ui.views import Source

    dev, local = Source(str(iot), "dev").project(), Source(str(iot), None).project()
    assert dev.processors["sensor_daily_stats"].output.dataset == "dev_iot_rollup"
    assert local.processors["sensor_daily_stats"].output.dataset == "iot_rollup"  # cached per target
    assert all(name.startswith("dev-") for name in dev.topics)


def test_package_names_dev_functions_and_their_trigger_topics(iot, capsys):
    """dev and prod functions in one project: dev's carry its prefix, and listen on dev's topics."""
    assert main(["-p", str(iot), "-t", "dev", "package", "--out", str(iot / "dist-dev"), "--json"]) == 0
    dev = json.loads(capsys.readouterr().out)
    assert main(["-p", str(iot), "-t", "local", "package", "--out", str(iot / "dist-local"), "--json"]) == 0
    local = json.loads(capsys.readouterr().out)
    dev_names = [c[3] for c in dev["commands"]]
    assert dev_names and all(n.startswith("dev-pipectl-orch-") for n in dev_names)
    assert {n.removeprefix("dev-") for n in dev_names} == {c[3] for c in local["commands"]}
    triggers = [a for c in dev["commands"] for a in c if a.startswith("--trigger-topic=")]
    assert triggers and all(a.startswith("--trigger-topic=dev-") for a in triggers)
    assert [c[3] for c in dev["invoker_commands"]] == dev_names


@pytest.mark.parametrize("settings, message", [
    ("topic_prefix: 1dev-", "start with a letter"),
    ("dataset_prefix: " + "d" * 30 + "_", "at most 24"),
])
def test_a_prefix_that_cannot_name_a_service_is_a_located_error(tmp_path, capsys, settings, message):
    root = tmp_path / "iot"
    init_example(root, "iot_sensors")
    (root / "pipectl.yaml").write_text(f"version: 1\ntargets:\n  local: {{}}\n  dev:\n    {settings}\n")
    assert main(["-p", str(root), "-t", "dev", "plan"]) == 1
    err = capsys.readouterr().err
    assert "pipectl.yaml:5" in err and message in err, err


def test_package_worker_names_the_targets_service(tmp_path, capsys):
    root = tmp_path / "iot"
    init_example(root, "iot_sensors")
    remote = ("    project: p\n    execution: remote\n    warehouse: {type: bigquery}\n    bus: {type: pubsub}\n"
              "    state: {type: firestore}\n    worker: {url: 'https://{service}-abc-uc.a.run.app', service_account: w@p.iam.gserviceaccount.com}\n")
    (root / "pipectl.yaml").write_text(f"version: 1\ntargets:\n  local: {{}}\n  prod:\n{remote.replace('{service}', 'pipectl-worker')}"
                                       f"  dev:\n    dataset_prefix: dev_\n{remote.replace('{service}', 'dev-pipectl-worker')}")
    names = {}
    for target in ("dev", "prod"):
        assert main(["-p", str(root), "-t", target, "package", "--worker", "--out", f"dist-{target}", "--json"]) == 0
        commands = json.loads(capsys.readouterr().out)["commands"]
        names[target] = {c[4] if c[2] == "services" else c[3] for c in commands}
    assert names == {"dev": {"dev-pipectl-worker"}, "prod": {"pipectl-worker"}}


def test_a_worker_service_name_too_long_with_its_prefix_is_a_located_error(tmp_path, capsys):
    root = tmp_path / "iot"
    init_example(root, "iot_sensors")
    (root / "pipectl.yaml").write_text(
        "version: 1\ntargets:\n  local: {}\n  dev:\n    topic_prefix: " + "d" * 20 + "-\n    execution: remote\n"
        "    warehouse: {type: bigquery}\n    bus: {type: pubsub}\n    state: {type: firestore}\n"
        "    worker: {url: 'https://w.a.run.app', service: " + "w" * 45 + "}\n")
    assert main(["-p", str(root), "-t", "dev", "plan"]) == 1
    err = capsys.readouterr().err
    assert "pipectl.yaml:10" in err and "not a valid Cloud Run name" in err, err


def test_a_dev_target_pushing_to_prods_worker_is_a_located_error(tmp_path, capsys):
    """dev's push subscriptions must not deliver to prod's service: a *.run.app worker.url
    names its service, which must be the target's (prefixed) worker service."""
    root = tmp_path / "iot"
    init_example(root, "iot_sensors")
    (root / "pipectl.yaml").write_text(
        "version: 1\ntargets:\n  local: {}\n  dev:\n    topic_prefix: dev-\n    execution: remote\n"
        "    warehouse: {type: bigquery}\n    bus: {type: pubsub}\n    state: {type: firestore}\n"
        "    worker: {url: 'https://pipectl-worker-abc-uc.a.run.app'}\n")
    assert main(["-p", str(root), "-t", "dev", "plan"]) == 1
    err = capsys.readouterr().err
    assert "pipectl.yaml:10" in err and "not the URL of its worker service 'dev-pipectl-worker'" in err, err
