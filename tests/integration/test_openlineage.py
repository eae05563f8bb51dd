"""OpenLineage run events (pipectl.yaml target `lineage:`): START and COMPLETE (or FAIL) per
processor run, received by a local HTTP receiver, valid against the RunEvent schema, with
the inputs, the output, the column lineage validate derives and the update's correlation
id as the parent run; the file transport writes the same; a receiver that is down never
fails a run."""
from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

pytest.importorskip("openlineage.client", reason="pip install -e '.[lineage]' (in the dev extra)")

from jsonschema import Draft202012Validator, FormatChecker  # noqa: E402

from framework.cli import main  # noqa: E402
from framework.run.lineage import run_uuid  # noqa: E402
from framework.scaffold import init_example  # noqa: E402

DAY = "2025-03-03"
SCHEMA = json.loads((Path(__file__).parent / "openlineage_run_event.schema.json").read_text())


class Receiver:
    """A Marquez stand-in: records every POSTed event."""

    def __init__(self) -> None:
        events, paths, auth = self.events, self.paths, self.auth = [], [], []

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                paths.append(self.path)
                auth.append(self.headers.get("Authorization"))
                events.append(json.loads(body))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.close()


def _project(tmp_path: Path, lineage: str) -> Path:
    root = tmp_path / "iot"
    init_example(root, "iot_sensors")
    (root / "pipectl.yaml").write_text(f"version: 1\ntargets:\n  local:\n    lineage: {lineage}\n")
    assert main(["-p", str(root), "sample", "--date", DAY]) == 0
    return root


def _valid(event: dict) -> None:
    errors = sorted(Draft202012Validator(SCHEMA, format_checker=FormatChecker()).iter_errors(event), key=str)
    assert not errors, [f"{list(e.absolute_path)}: {e.message}" for e in errors]


def test_every_run_emits_start_and_complete_to_an_http_receiver(tmp_path, receiver, capsys):
    root = _project(tmp_path, f"{{transport: http, url: '{receiver.url}', namespace: iot-dev}}")
    capsys.readouterr()
    assert main(["-p", str(root), "run", "--date", DAY, "--json", "-q"]) == 0
    report = json.loads(capsys.readouterr().out)
    events = receiver.events
    assert set(receiver.paths) == {"/api/v1/lineage"}
    for event in events:
        _valid(event)
    by_job: dict[str, list[str]] = {}
    for e in events:
        by_job.setdefault(e["job"]["name"], []).append(e["eventType"])
    runs = [r for p in report["phases"] for r in p["runs"]]
    assert set(by_job) == {r["processor"] for r in runs} and all(v == ["START", "COMPLETE"] for v in by_job.values())
    stats = next(e for e in events if e["job"]["name"] == "sensor_daily_stats" and e["eventType"] == "COMPLETE")
    run = next(r for r in runs if r["processor"] == "sensor_daily_stats")
    assert stats["job"]["namespace"] == "iot-dev" and stats["run"]["runId"] == run_uuid(run["run_id"])
    parent = stats["run"]["facets"]["parent"]
    assert parent["run"]["runId"] == run_uuid(report["correlation_id"]) and parent["job"]["name"] == "iot_sensors"
    assert {d["name"] for d in stats["inputs"]} == {"iot_raw.readings_clean", "iot_raw.sensor_registry"}
    (out,) = stats["outputs"]
    assert out["name"] == "iot_rollup.sensor_daily_stats" and out["namespace"] == "duckdb://iot_sensors"
    assert [f["name"] for f in out["facets"]["schema"]["fields"]][:3] == ["day", "sensor_id", "site_id"]
    lineage = out["facets"]["columnLineage"]["fields"]
    assert lineage["temp_avg"]["inputFields"] == [{"namespace": "duckdb://iot_sensors", "name": "iot_raw.readings_clean",
                                                    "field": "temperature_c", "transformations": []}]
    assert lineage["site_id"]["inputFields"][0]["name"] == "iot_raw.sensor_registry"
    assert len({e["run"]["facets"]["parent"]["run"]["runId"] for e in events}) == 1  # one update, one parent

    # the schema bites: the same event, broken in ways a consumer rejects
    validator = Draft202012Validator(SCHEMA, format_checker=FormatChecker())
    for path, value in ((("eventType",), "DONE"), (("run", "runId"), None), (("outputs", 0, "facets", "columnLineage", "fields",
                                                                                "temp_avg", "inputFields", 0, "field"), None)):
        broken = json.loads(json.dumps(stats))
        node = broken
        for key in path[:-1]:
            node = node[key]
        if value is None:
            del node[path[-1]]
        else:
            node[path[-1]] = value
        assert list(validator.iter_errors(broken)), path


def test_a_failed_run_emits_fail_with_its_error(tmp_path, receiver, capsys):
    root = _project(tmp_path, f"{{transport: http, url: '{receiver.url}'}}")
    sql = root / "sql" / "readings_clean.sql"
    sql.write_text(sql.read_text().replace("FROM", "FROM no_such_table_q, ", 1))
    assert main(["-p", str(root), "run", "--date", DAY, "--json", "-q"]) == 1
    capsys.readouterr()
    failed = [e for e in receiver.events if e["eventType"] == "FAIL"]
    assert [e["job"]["name"] for e in failed] == ["readings_clean"]
    _valid(failed[0])
    assert "no_such_table_q" in failed[0]["run"]["facets"]["errorMessage"]["message"]
    assert failed[0]["job"]["namespace"] == "pipectl/iot_sensors"


def test_the_file_transport_writes_json_lines(tmp_path, capsys):
    root = _project(tmp_path, "{transport: file, path: .pipectl/lineage.jsonl}")
    assert main(["-p", str(root), "run", "--date", DAY, "--select", "readings_clean", "--json", "-q"]) == 0
    lines = (root / ".pipectl" / "lineage.jsonl").read_text().splitlines()
    events = [json.loads(line) for line in lines]
    assert [(e["job"]["name"], e["eventType"]) for e in events] == [("readings_clean", "START"), ("readings_clean", "COMPLETE")]
    for event in events:
        _valid(event)


def test_a_receiver_that_is_down_costs_a_warning_not_the_run(tmp_path, capsys):
    receiver = Receiver()
    url = receiver.url
    receiver.close()  # nothing listens there any more
    root = _project(tmp_path, f"{{transport: http, url: '{url}', timeout: 1}}")
    assert main(["-p", str(root), "run", "--date", DAY, "--select", "readings_clean", "--json"]) == 0
    err = capsys.readouterr().err
    assert "OpenLineage START event of readings_clean" in err and "not delivered" in err


def test_a_bad_lineage_block_is_a_located_config_error(tmp_path, capsys):
    root = tmp_path / "iot"
    init_example(root, "iot_sensors")
    (root / "pipectl.yaml").write_text("version: 1\ntargets:\n  local:\n    lineage: {transport: kafka}\n")
    assert main(["-p", str(root), "plan"]) == 1
    assert "pipectl.yaml:4" in capsys.readouterr().err


def test_the_http_transport_sends_the_api_key_of_an_env_reference(tmp_path, receiver, capsys, monkeypatch):
    monkeypatch.setenv("PIPECTL_TEST_OL_KEY", "k3y-from-env")
    root = _project(tmp_path, f"{{transport: http, url: '{receiver.url}', timeout: 2, api_key: {{env: PIPECTL_TEST_OL_KEY}}}}")
    assert main(["-p", str(root), "run", "--date", DAY, "--select", "readings_clean", "--json", "-q"]) == 0
    assert len(receiver.events) == 2 and receiver.auth == ["Bearer k3y-from-env"] * 2
    assert "k3y-from-env" not in (root / "pipectl.yaml").read_text()


def test_the_api_key_of_a_secret_manager_reference(tmp_path, receiver, capsys):
    from types import SimpleNamespace

    from framework.alerts import secrets

    path = "projects/p/secrets/marquez-key/versions/latest"
    secrets.use_secret_client(lambda: SimpleNamespace(access_secret_version=lambda request: SimpleNamespace(
        payload=SimpleNamespace(data=b"k3y-from-sm\n")) if request["name"] == path else None))
    try:
        root = _project(tmp_path, f"{{transport: http, url: '{receiver.url}', api_key: {{secret: {path}}}}}")
        assert main(["-p", str(root), "run", "--date", DAY, "--select", "readings_clean", "--json", "-q"]) == 0
    finally:
        secrets.use_secret_client(None)
    assert receiver.auth == ["Bearer k3y-from-sm"] * 2


def test_an_unset_api_key_variable_fails_the_run_before_it_starts(tmp_path, receiver, capsys, monkeypatch):
    monkeypatch.delenv("PIPECTL_TEST_OL_KEY", raising=False)
    root = _project(tmp_path, f"{{transport: http, url: '{receiver.url}', api_key: {{env: PIPECTL_TEST_OL_KEY}}}}")
    assert main(["-p", str(root), "run", "--date", DAY, "--select", "readings_clean", "--json", "-q"]) == 1
    err = capsys.readouterr().err
    assert "lineage.api_key" in err and "PIPECTL_TEST_OL_KEY is not set" in err
    assert receiver.events == []


def test_a_literal_api_key_is_refused_where_it_is_written(tmp_path, capsys):
    root = tmp_path / "iot"
    init_example(root, "iot_sensors")
    (root / "pipectl.yaml").write_text("version: 1\ntargets:\n  local:\n    lineage:\n      transport: http\n"
                                       "      url: http://localhost:5000\n      api_key: sk-literal\n")
    assert main(["-p", str(root), "plan"]) == 1
    err = capsys.readouterr().err
    assert "pipectl.yaml:7" in err and "api_key: {env:" in err and "sk-literal" not in err
