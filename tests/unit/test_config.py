"""pipectl.yaml targets and the lazy backend registry."""
from __future__ import annotations

import sys
import textwrap

import pytest

from framework.backends.localbus import LocalBus
from framework.backends.registry import Backends, build_backend, load_class, open_backends, open_bus, register_backend
from framework.config import CONFIG_FILE, BackendSpec, load_config, resolve_target
from framework.errors import BackendError, ConfigError, MissingDependencyError

GOOD = """\
version: 1
default_target: local
targets:
  local:
    warehouse: {type: duckdb, path: .pipectl/warehouse.duckdb}
    bus: {type: local, path: .pipectl/bus.sqlite}
    state: {type: sqlite, path: .pipectl/ledger.sqlite}
  gcp:
    project: ${PIPECTL_TEST_PROJECT:-my-proj}
    location: US
    warehouse: {type: bigquery}
    bus: {type: pubsub}
    state: {type: firestore, database: "(default)"}
"""


def write(tmp_path, text: str):
    (tmp_path / CONFIG_FILE).write_text(textwrap.dedent(text), encoding="utf-8")
    return tmp_path


def test_no_file_gives_the_embedded_local_target(tmp_path):
    config = load_config(tmp_path)
    assert config.path is None and config.default_target == "local"
    target = config.target()
    assert (target.warehouse.type, target.bus.type, target.state.type) == ("duckdb", "local", "sqlite")
    assert target.bus.options == {"path": ".pipectl/bus.sqlite"}


def test_reads_targets_and_expands_environment(tmp_path, monkeypatch):
    monkeypatch.delenv("PIPECTL_TEST_PROJECT", raising=False)
    config = load_config(write(tmp_path, GOOD))
    gcp = config.target("gcp")
    assert gcp.settings == {"project": "my-proj", "location": "US"}
    assert (gcp.warehouse.type, gcp.bus.type, gcp.state.type) == ("bigquery", "pubsub", "firestore")
    assert gcp.state.options == {"database": "(default)"}
    monkeypatch.setenv("PIPECTL_TEST_PROJECT", "prod-123")
    assert resolve_target(tmp_path, "gcp").settings["project"] == "prod-123"
    assert resolve_target(tmp_path).name == "local"


def test_role_left_out_uses_the_embedded_backend(tmp_path):
    write(tmp_path, "targets:\n  mixed:\n    bus: {type: local, path: other/bus.sqlite}\n")
    target = resolve_target(tmp_path)  # the only target is the default
    assert target.name == "mixed" and target.warehouse.type == "duckdb" and target.bus.options["path"] == "other/bus.sqlite"


def test_unknown_target_suggests_the_closest(tmp_path):
    write(tmp_path, GOOD)
    with pytest.raises(ConfigError, match="unknown target 'gpc'.*did you mean 'gcp'"):
        resolve_target(tmp_path, "gpc")


def test_errors_are_located_and_collected(tmp_path):
    write(tmp_path, """\
        default_target: prod
        targets:
          local:
            bus: {type: lokal}
            warehouse: {path: x.duckdb}
            extra: 1
        """)
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path)
    text = str(info.value)
    assert "pipectl.yaml:5:" in text and "'type' is a required property" in text
    assert "pipectl.yaml:6:" in text and "extra" in text
    # schema errors stop before semantic checks; fix them and the semantic ones show
    write(tmp_path, """\
        default_target: prod
        targets:
          local:
            bus: {type: lokal}
        """)
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path)
    text = str(info.value)
    assert "pipectl.yaml:1:" in text and "default_target 'prod' is not a target" in text
    assert "pipectl.yaml:4:" in text and "unknown bus type 'lokal'" in text and "did you mean 'local'" in text


def test_missing_environment_variable_is_an_error(tmp_path, monkeypatch):
    monkeypatch.delenv("PIPECTL_NOPE", raising=False)
    write(tmp_path, "targets:\n  gcp:\n    project: ${PIPECTL_NOPE}\n")
    with pytest.raises(ConfigError, match="PIPECTL_NOPE is not set"):
        load_config(tmp_path)


def test_yaml_syntax_error_is_located(tmp_path):
    write(tmp_path, "targets:\n  local: {bus: [\n")
    with pytest.raises(ConfigError, match="pipectl.yaml:"):
        load_config(tmp_path)


def test_open_bus_resolves_path_against_project_root(tmp_path):
    bus = open_bus(tmp_path)
    try:
        assert isinstance(bus, LocalBus)
        assert bus.path == tmp_path / ".pipectl" / "bus.sqlite"
        assert (tmp_path / ".pipectl" / ".gitignore").read_text().strip().endswith("*")
    finally:
        bus.close()


def test_backends_open_lazily_and_close_together(tmp_path):
    with open_backends(tmp_path) as backends:
        assert isinstance(backends, Backends)
        assert backends._open == {}
        bus = backends.bus
        assert backends.bus is bus and list(backends._open) == ["bus"]
    assert backends._open == {}


def test_unknown_backend_option_is_a_located_config_error(tmp_path):
    write(tmp_path, "targets:\n  local:\n    bus: {type: local, path: b.sqlite, colour: red}\n")
    with open_backends(tmp_path) as backends, pytest.raises(ConfigError, match="does not accept option\\(s\\) colour") as info:
        backends.bus
    assert "pipectl.yaml:3:" in str(info.value) and "accepted: path, clock, busy_timeout" in str(info.value)


def test_target_settings_reach_only_constructors_that_accept_them(tmp_path):
    class WithProject:
        def __init__(self, project: str, database: str = "(default)"):
            self.project, self.database = project, database

        def close(self) -> None:
            pass

    sys.modules["_pipectl_test_backend"] = type(sys)("_pipectl_test_backend")
    sys.modules["_pipectl_test_backend"].WithProject = WithProject  # type: ignore[attr-defined]
    register_backend("state", "teststore", "_pipectl_test_backend:WithProject")
    try:
        write(tmp_path, "targets:\n  t:\n    project: p1\n    location: EU\n    state: {type: teststore, database: db2}\n")
        with open_backends(tmp_path) as backends:
            assert (backends.state.project, backends.state.database) == ("p1", "db2")
    finally:
        from framework.backends.registry import REGISTRY

        REGISTRY["state"].pop("teststore")
        sys.modules.pop("_pipectl_test_backend")


def test_missing_sdk_names_the_extra():
    register_backend("bus", "fakecloud", "_pipectl_fake_gcp_backend:Thing", extra="gcp")
    try:
        import importlib.abc

        class Finder(importlib.abc.MetaPathFinder):
            def find_spec(self, name, path, target=None):
                if name == "_pipectl_fake_gcp_backend":
                    raise ModuleNotFoundError("No module named 'google.cloud.pubsub_v1'", name="google.cloud.pubsub_v1")
                return None

        finder = Finder()
        sys.meta_path.insert(0, finder)
        try:
            with pytest.raises(MissingDependencyError, match=r"google.cloud.pubsub_v1.*\[gcp\]"):
                load_class("bus", "fakecloud")
        finally:
            sys.meta_path.remove(finder)
    finally:
        from framework.backends.registry import REGISTRY

        REGISTRY["bus"].pop("fakecloud")


def test_registered_module_missing_from_installation_is_a_backend_error():
    register_backend("bus", "ghost", "framework.backends._no_such_module:Bus")
    try:
        with pytest.raises(BackendError, match="not part of this installation"):
            load_class("bus", "ghost")
    finally:
        from framework.backends.registry import REGISTRY

        REGISTRY["bus"].pop("ghost")


def test_unknown_type_at_build_time():
    with pytest.raises(ConfigError, match="unknown bus type 'nope'"):
        build_backend(BackendSpec("bus", "nope"), ".")


def test_loading_config_imports_no_backend_or_cloud_module(tmp_path):
    import subprocess

    write(tmp_path, GOOD)
    code = ("import sys; from framework.config import resolve_target; resolve_target(sys.argv[1], 'gcp'); "
            "bad = [m for m in sys.modules if m.startswith(('google.cloud.', 'duckdb', 'framework.backends.localbus', 'framework.backends.pubsub'))]; "
            "print(bad); sys.exit(1 if bad else 0)")
    result = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


def test_embedded_warehouse_uses_the_project_template_overrides(tmp_path):
    """A project's templates/ddl.sql.j2 replaces the built-in one (docs: 'a user project can
    replace any template'); the warehouse opened from the target must see it too."""
    from framework.manifest.model import Column, Table

    (tmp_path / "templates").mkdir()
    (tmp_path / "templates" / "ddl.sql.j2").write_text(
        "CREATE SCHEMA IF NOT EXISTS {{ table.dataset }};\n"
        "CREATE TABLE IF NOT EXISTS {{ table.fqn }} (from_override INTEGER);\n")
    with open_backends(tmp_path) as backends:
        wh = backends.warehouse
        wh.create_table(Table("raw", "games", (Column("game_date", "DATE"),)))
        assert [c.name for c in wh.table_schema("raw.games")] == ["from_override"]
