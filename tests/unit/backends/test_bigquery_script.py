"""BigQuery scripts without the emulator: what the warehouse sends (one job per script, its
values as typed parameters) and how the emulator's parameter stand-in rewrites a script."""
from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

pytest.importorskip("google.cloud.bigquery")

from framework.backends.bigquery import BigQueryWarehouse, read_params_from  # noqa: E402
from framework.sql.params import QueryParam  # noqa: E402


class FakeClient:
    """Records each job it is asked to start; answers every job with ``rows``."""

    def __init__(self, rows: list[dict[str, Any]] | None = None) -> None:
        self.jobs: list[tuple[str, Any]] = []
        self.rows = rows or []

    def query(self, sql: str, job_config: Any = None, **_: Any) -> Any:
        self.jobs.append((sql, job_config))
        rows = [SimpleNamespace(items=lambda r=r: r.items()) for r in self.rows]
        return SimpleNamespace(result=lambda **__: rows)


@pytest.fixture
def service(monkeypatch):
    monkeypatch.delenv("BIGQUERY_EMULATOR_HOST", raising=False)
    client = FakeClient([{"entity_key": "a", "n": 1}])
    return BigQueryWarehouse("p", client=client), client


def test_a_script_is_one_job_with_its_values_as_parameters(service) -> None:
    wh, client = service
    rows = wh.run_script("DELETE FROM d.t WHERE k IN UNNEST(@ids);\nSELECT @day AS day;",
                         [QueryParam("ids", ["a", "b"], "STRING", array=True), QueryParam("day", "2025-01-01", "DATE"),
                          QueryParam("unused", "x")])
    assert rows == [{"entity_key": "a", "n": 1}]
    [(sql, config)] = client.jobs
    assert "'a'" not in sql and "2025" not in sql
    assert sorted(p.name for p in config.query_parameters) == ["day", "ids"]  # an unused one is not sent


def test_several_dml_statements_are_one_transaction_in_one_job(service) -> None:
    wh, client = service
    wh.execute_script("DELETE FROM d.t WHERE k = @k; INSERT INTO d.t (k) VALUES (@k)", [QueryParam("k", "a")])
    [(sql, _)] = client.jobs
    assert sql.startswith("BEGIN TRANSACTION;") and sql.rstrip().endswith("COMMIT TRANSACTION;")


def test_the_emulator_stand_in_reads_parameters_from_a_table_and_leaves_text_alone() -> None:
    sql = ("SELECT @day, '@day', \"@day\", `@day`, @@error.message, @days -- @day\n"
           "FROM t WHERE k IN UNNEST(@ids) /* @ids */ # @ids\n")
    out = read_params_from(sql, {"day", "ids"}, "`p.s.params_1`")
    assert out == ("SELECT (SELECT `day` FROM `p.s.params_1`), '@day', \"@day\", `@day`, @@error.message, @days -- @day\n"
                   "FROM t WHERE k IN UNNEST((SELECT `ids` FROM `p.s.params_1`)) /* @ids */ # @ids\n")


def test_on_the_emulator_a_script_binds_its_parameters_in_one_job_first(monkeypatch) -> None:
    client = FakeClient()
    wh = BigQueryWarehouse("p", client=client, api_endpoint="http://127.0.0.1:9")
    monkeypatch.setattr(wh, "create_dataset", lambda name: None)
    deleted: list[str] = []
    monkeypatch.setattr(wh, "delete_table", deleted.append)
    wh.run_script("DELETE FROM d.t WHERE k = @k;\nSELECT 1 AS x;", [QueryParam("k", "a")])
    (bind, bind_config), (script, script_config) = client.jobs
    assert bind.startswith("CREATE TABLE `p._pipectl_emulator_params.params_") and "CAST(@k AS STRING) AS `k`" in bind
    assert [p.name for p in bind_config.query_parameters] == ["k"] and bind_config.labels["pipectl_job"] == "emulator_params"
    assert "@k" not in script and "(SELECT `k` FROM `p._pipectl_emulator_params.params_" in script
    assert not script_config.query_parameters
    assert deleted and deleted[0].startswith("_pipectl_emulator_params.params_")  # dropped afterwards


def test_a_transaction_cancelled_by_a_concurrent_one_is_run_again(service, monkeypatch) -> None:
    from google.api_core.exceptions import BadRequest

    import framework.backends.bigquery as bq
    from framework.errors import BackendError

    wh, client = service
    monkeypatch.setattr(bq.time, "sleep", lambda s: None)
    real, failures = client.query, [2]

    def query(sql: str, job_config: Any = None, **kw: Any) -> Any:
        if failures[0]:
            failures[0] -= 1
            client.jobs.append((sql, job_config))
            raise BadRequest("Transaction is aborted due to concurrent update against table p._pipectl.entity_fingerprints")
        return real(sql, job_config=job_config, **kw)

    monkeypatch.setattr(client, "query", query)
    script = "BEGIN TRANSACTION;\nDELETE FROM d.t WHERE TRUE;\nCOMMIT TRANSACTION;\nSELECT 1 AS n;"
    assert wh.run_script(script) == [{"entity_key": "a", "n": 1}]
    assert len(client.jobs) == 3  # two cancelled, the third committed
    failures[0] = 1  # any other error, or a script without a transaction, is not retried
    with pytest.raises(BackendError, match="concurrent update"):
        wh.run_script("DELETE FROM d.t WHERE TRUE;\nSELECT 1 AS n;")
