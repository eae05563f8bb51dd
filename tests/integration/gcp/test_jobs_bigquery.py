"""BigQuery jobs per processor run: on BigQuery every statement is a job (a second or more
each), so the job count is what a user waits for. A recording client counts the jobs the
run path sends to the emulator (queries and load jobs, by the processor whose run sent
them) for the example's one-player update and for the small shop project; the counts are
asserted so a regression fails here, and the tables still equal a DuckDB full recompute.

The emulator binds no parameter inside a script (BigQuery does): there each parameterised
script costs one more job that binds its parameters (labelled ``emulator_params``, see
framework/backends/bigquery.py). Those are counted apart: BigQuery never runs them."""
from __future__ import annotations

import datetime as dt
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from framework.drive.session import Session, default_sample_date, run_partition, sample_module
from framework.run.runner import ProcessorRunner, RunRequest
from projects import copy_example, snapshot_tables, table_differences

pytestmark = [pytest.mark.gcp, pytest.mark.timeout(1200)]
PLAYERS = 5
EMULATOR_ONLY = "emulator_params"


class RecordingClient:
    """A google.cloud.bigquery Client that notes every job it starts (query and load jobs)
    with the processor whose run started it (``current``; "driver" outside runs)."""

    def __init__(self, client: Any) -> None:
        self._client, self.jobs, self.current = client, [], "driver"

    def _note(self, kind: str, config: Any, text: str) -> None:
        labels = dict(getattr(config, "labels", None) or {})
        self.jobs.append((self.current, kind, labels.get("pipectl_job", ""), text.strip().splitlines()[0][:100]))

    def query(self, sql: str, *args: Any, job_config: Any = None, **kwargs: Any) -> Any:
        self._note("query", job_config, sql)
        return self._client.query(sql, *args, job_config=job_config, **kwargs)

    def load_table_from_file(self, *args: Any, job_config: Any = None, **kwargs: Any) -> Any:
        self._note("load", job_config, str(args[1] if len(args) > 1 else "load"))
        return self._client.load_table_from_file(*args, job_config=job_config, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)

    def per_processor(self) -> Counter:
        """Jobs BigQuery itself would run, per processor (the emulator's parameter binding apart)."""
        return Counter(p for p, _, job, _ in self.jobs if job != EMULATOR_ONLY)


@pytest.fixture
def recording(monkeypatch):
    """Attribute jobs to the processor run that sends them (the driver runs processors one by one)."""
    clients: list[RecordingClient] = []
    real_run = ProcessorRunner.run

    def run(self, request):  # noqa: ANN001
        client = getattr(self.warehouse, "_client", None)
        if isinstance(client, RecordingClient):
            client.current = request.processor
        try:
            return real_run(self, request)
        finally:
            if isinstance(client, RecordingClient):
                client.current = "driver"

    monkeypatch.setattr(ProcessorRunner, "run", run)

    def wrap(warehouse: Any) -> RecordingClient:
        warehouse._client = RecordingClient(warehouse._client)
        clients.append(warehouse._client)
        return warehouse._client

    return wrap


def _utc_naive(snapshot: dict[str, list[tuple]]) -> dict[str, list[tuple]]:
    def norm(value: object) -> object:
        if isinstance(value, dt.datetime) and value.tzinfo is not None:
            return value.astimezone(dt.timezone.utc).replace(tzinfo=None)
        return value

    return {t: sorted((tuple(norm(v) for v in row) for row in rows), key=repr) for t, rows in snapshot.items()}


def test_a_one_player_update_of_the_example_on_bigquery(tmp_path: Path, uid: str, recording) -> None:
    yaml = f"targets:\n  gcp:\n    project: jobs-{uid}\n    warehouse: {{type: bigquery, timeout: 120}}\n"
    root = copy_example(tmp_path / "project", templates=True, pipectl_yaml=yaml)
    with Session.open(root, "gcp") as sess:
        date = default_sample_date(sess.project)
        sample_module(sess.project, "generate")(sess.warehouse, date, days=1, seed=42, players_per_team=PLAYERS)
        assert run_partition(sess, date).status == "success"
        wh = sess.warehouse
        player = wh.query("SELECT player_lookup FROM nba_raw.nbac_gamebook_player_stats WHERE minutes > 0 "
                          "ORDER BY points DESC, player_lookup LIMIT 1")[0]["player_lookup"]
        sample_module(sess.project, "apply_update")(wh, date, player, points=44)
        client = recording(wh)
        report = run_partition(sess, date, sources_changed=["landing_gamebook"])
        assert report.status == "success"
        jobs = client.per_processor()
        wh._client = client._client  # the snapshot below is not the run's
        on_gcp = _utc_naive(snapshot_tables(sess))
    # each processor that ran writes its rows, fingerprints and change-set with one script job,
    # plus its detection when it detects (raw: a landing source carries no entity list; the
    # team defense reads a rewritten mapping), the raw run's one count of the critical inputs
    # and gate tables (the scripts report their outputs' counts: no other count), and
    # nothing else (player_game_summary's data tests run in its script). Before: 39 jobs
    # (player_game_summary 6 and a shared count).
    assert dict(jobs) == {"nbac_gamebook_player_stats": 3, "player_game_summary": 1, "team_defense_game_summary": 2,
                          "upcoming_player_game_context": 1, "player_shot_zone_analysis": 1, "player_daily_cache": 1}, \
        client.jobs
    # player_game_summary's data tests ran inside its script, on the rows it wrote
    assert [j[2] for j in client.jobs if j[0] == "player_game_summary" and j[2] != EMULATOR_ONLY] == ["run"]
    [tested] = [r for phase in report.phases for r in phase.runs if r.processor == "player_game_summary"]
    assert tested.tests and all(t["status"] == "pass" for t in tested.tests), tested.tests
    # everything still equals a full recompute of the edited day on DuckDB
    ref_root = copy_example(tmp_path / "reference", templates=True)
    with Session.open(ref_root) as ref:
        sample_module(ref.project, "generate")(ref.warehouse, date, days=1, seed=42, players_per_team=PLAYERS)
        sample_module(ref.project, "apply_update")(ref.warehouse, date, player, points=44)
        assert run_partition(ref, date, full=True, mode="full").status == "success"
        assert table_differences(on_gcp, _utc_naive(snapshot_tables(ref))) == []


def test_a_run_script_that_fails_before_its_commit_leaves_nothing_written(tmp_path: Path, uid: str, recording,
                                                                          monkeypatch) -> None:
    """The rows, fingerprints and change-set are one transaction: a failure after the MERGE
    (here an error raised just before COMMIT) leaves the output, the fingerprints and the
    change-sets as they were; the next run does the work, ending equal to a full recompute."""
    from tests.integration.gcp.test_candidates_bigquery import TABLES, _tables, _world
    from tests.unit.run.test_candidates import DAY, ORDER

    _, wh, runner = _world(tmp_path, "fail", uid)
    for name in ORDER:
        assert runner.run(RunRequest(name, DAY)).status == "success"
    wh.execute_script(f"UPDATE landing.orders SET amount = 11.5 WHERE customer_id = 'c1' AND day = DATE '{DAY}'")
    state = "SELECT processor, entity_key, fingerprint, run_id FROM _pipectl.entity_fingerprints"
    changes = "SELECT run_id, entity_key, operation FROM _pipectl.change_sets"
    before = (_tables(wh), sorted(map(repr, wh.query(state))), sorted(map(repr, wh.query(changes))))
    real = wh.run_script

    def failing(sql, params=(), labels=None):  # noqa: ANN001
        return real(sql.replace("COMMIT TRANSACTION;", "SELECT ERROR('injected before the commit');\nCOMMIT TRANSACTION;"),
                    params, labels)

    monkeypatch.setattr(wh, "run_script", failing)
    client = recording(wh)
    failed = runner.run(RunRequest("orders_raw", DAY))
    assert failed.status == "failed" and "injected before the commit" in (failed.error or ""), failed.error
    assert "rows were written" not in failed.error
    assert [j[2] for j in client.jobs if j[2] != EMULATOR_ONLY] == ["detect", "run", "forget"], client.jobs
    monkeypatch.setattr(wh, "run_script", real)
    assert (_tables(wh), sorted(map(repr, wh.query(state))), sorted(map(repr, wh.query(changes)))) == before
    for name in ORDER:
        assert runner.run(RunRequest(name, DAY)).status in ("success", "no_data")
    _, ref, full = _world(tmp_path, "failref", uid)
    ref.execute_script(f"UPDATE landing.orders SET amount = 11.5 WHERE customer_id = 'c1' AND day = DATE '{DAY}'")
    for name in ORDER:
        assert full.run(RunRequest(name, DAY, full=True)).status == "success"
    assert _tables(wh) == _tables(ref) and set(_tables(wh)) == set(TABLES)


def _tested_world(tmp_path: Path, name: str, uid: str, tests: str):
    """The shop world with data tests on customer_totals."""
    import tests.integration.gcp.test_candidates_bigquery as cand
    from tests.unit.run.test_candidates import MANIFEST

    manifest = MANIFEST.replace("    transform: {sql: sql/customer_totals.sql}",
                                "    transform: {sql: sql/customer_totals.sql}\n    tests:\n" + tests, 1)
    assert manifest != MANIFEST
    real = cand.MANIFEST
    cand.MANIFEST = manifest
    try:
        return cand._world(tmp_path, name, uid)
    finally:
        cand.MANIFEST = real


def test_data_tests_run_inside_the_script_and_a_failing_one_fails_the_run_keeping_the_rows(tmp_path: Path, uid: str,
                                                                                            recording) -> None:
    from tests.unit.run.test_candidates import DAY, ORDER

    _, wh, runner = _tested_world(tmp_path, "tested", uid, "      - expression: {name: total_below_11, sql: \"total < 11\"}\n"
                                                          "      - not_null: [customer_id]\n")
    for name in ORDER:
        assert runner.run(RunRequest(name, DAY)).status == "success"
    wh.execute_script(f"UPDATE landing.orders SET amount = 11.5 WHERE customer_id = 'c1' AND day = DATE '{DAY}'")
    assert runner.run(RunRequest("orders_raw", DAY)).status == "success"
    client = recording(wh)
    run = runner.run(RunRequest("customer_totals", DAY))
    assert run.status == "failed" and "total_below_11" in run.error, run.error
    assert [(t["name"], t["status"], t["failures"]) for t in run.tests] == [("total_below_11", "fail", 1),
                                                                           ("not_null_customer_id", "pass", 0)]
    # detection, then one job wrote, recorded and tested; the failed run forgot its fingerprints (FM 17)
    assert [j[2] for j in client.jobs if j[2] != EMULATOR_ONLY] == ["detect", "run", "forget"], client.jobs
    assert wh.query("SELECT total FROM shop_analytics.customer_totals WHERE customer_id = 'c1'") == [{"total": 11.5}]


def test_a_data_test_whose_query_fails_is_an_error_of_its_own_and_the_rows_are_written(tmp_path: Path, uid: str,
                                                                                       recording) -> None:
    from tests.unit.run.test_candidates import DAY

    _, wh, runner = _tested_world(tmp_path, "broken", uid, "      - expression: {name: broken, sql: \"no_such_column > 0\"}\n")
    assert runner.run(RunRequest("orders_raw", DAY)).status == "success"
    client = recording(wh)
    run = runner.run(RunRequest("customer_totals", DAY))
    assert run.status == "failed" and [(t["name"], t["status"]) for t in run.tests] == [("broken", "error")], run.tests
    # the script with the test failed and was rolled back; written again without it, then the test alone
    assert [j[2] for j in client.jobs if j[2] != EMULATOR_ONLY][:3] == ["detect", "run", "run"], client.jobs
    assert wh.query("SELECT COUNT(*) AS n FROM shop_analytics.customer_totals") == [{"n": 4}]
