"""Warehouse on Google BigQuery (google-cloud-bigquery).

Why these choices:

* Values travel only as typed query parameters (``ScalarQueryParameter`` /
  ``ArrayQueryParameter`` built from :class:`QueryParam`), never pasted into SQL.
* Every job carries labels (``pipectl_processor``, ``pipectl_correlation_id`` ... sanitized to
  BigQuery label rules) so a bill line or a slow job traces back to a run, and every wait
  has a timeout (``result(timeout=...)``): a stuck job must fail, not hang a phase.
* Rows are written by load jobs from NDJSON (``load_table_from_file``), not streaming
  inserts: loaded rows are immediately visible to DML, streamed rows are not.
  :meth:`merge_rows` upserts by key through a staging table and one MERGE.
* A multi-statement script runs as one BigQuery script (one job) inside ``BEGIN TRANSACTION``
  / ``COMMIT TRANSACTION`` (DML only; DDL cannot run in a BigQuery transaction);
  :meth:`run_script` returns the rows of a script's last statement (a processor run's whole
  write is one such script, framework.run.script_write).
* The emulator (bqemulator) binds no query parameter inside a multi-statement script, which
  BigQuery does. Against the emulator only, the parameters of such a script are bound by one
  single-statement job first (``CREATE TABLE ... AS SELECT @a AS a, ...``, labelled
  ``pipectl_job=emulator_params``) and the script reads each ``@name`` from that one-row
  table: the script itself runs as one job, in one transaction, as on BigQuery. Values
  never enter the SQL text, on either side.
* Errors become :class:`BackendError` naming the table and the fix.

The emulator (``bqemulator``) is used when ``api_endpoint`` is given or
``BIGQUERY_EMULATOR_HOST`` is set (with anonymous credentials).
"""
from __future__ import annotations

import base64
import datetime as _dt
import decimal
import io
import json
import os
import random
import re
import time
import uuid
from typing import Any, Iterable, Mapping, Sequence

from framework.backends.gcp_common import require, sanitize_labels
from framework.backends.protocols import QueryParam
from framework.errors import BackendError
from framework.manifest.model import Column, Table

EMULATOR_ENV = "BIGQUERY_EMULATOR_HOST"
_DDL = re.compile(r"^\s*(CREATE|DROP|ALTER|TRUNCATE)\b", re.I)
_TXN = re.compile(r"\bBEGIN\s+TRANSACTION\b", re.I)
# string literals, quoted identifiers and comments (left alone) or a @parameter / @@variable
_SQL_TOKENS = re.compile(r"""'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*"|`[^`]*`|--[^\n]*|#[^\n]*|/\*.*?\*/|@@?\w+""", re.S)
EMULATOR_PARAMS_DATASET = "_pipectl_emulator_params"
# a transaction BigQuery cancelled because another one mutated the same table meanwhile
_ABORTED = re.compile(r"aborted due to concurrent update", re.I)
TRANSACTION_ATTEMPTS = 4
_NOT_FOUND_TABLE = re.compile(r"Not found: Table ([\w\-.:]+)")
_NOT_FOUND_DATASET = re.compile(r"Not found: Dataset ([\w\-.:]+)")
_TYPES = {"INTEGER": "INT64", "FLOAT": "FLOAT64", "BOOLEAN": "BOOL"}
_PARTITION_TYPES = {"DATE", "TIMESTAMP", "DATETIME"}


def _json_value(value: Any) -> Any:
    """A row value as NDJSON for a load job (dates as ISO text, bytes as base64)."""
    if isinstance(value, (_dt.datetime, _dt.date, _dt.time)):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return str(value)
    if isinstance(value, (bytes, bytearray)):
        return base64.b64encode(bytes(value)).decode()
    if isinstance(value, (list, tuple)):
        return [_json_value(v) for v in value]
    if isinstance(value, Mapping):
        return {k: _json_value(v) for k, v in value.items()}
    return value


def read_params_from(sql: str, names: set[str], table: str) -> str:
    """``sql`` with each ``@name`` of ``names`` read from the one-row ``table`` instead
    (``(SELECT `name` FROM table)``); string literals, quoted names, comments and ``@@system``
    variables are left alone. The emulator's stand-in for binding a script's parameters."""
    def swap(m: re.Match) -> str:
        token = m.group(0)
        if token.startswith("@") and not token.startswith("@@") and token[1:] in names:
            return f"(SELECT `{token[1:]}` FROM {table})"
        return token

    return _SQL_TOKENS.sub(swap, sql)


class BigQueryWarehouse:
    """Warehouse protocol on BigQuery. ``timeout`` bounds every job wait (seconds)."""

    dialect = "bigquery"
    concurrent_jobs = True  # jobs run server-side: fan-out workers need not take turns

    def __init__(self, project: str, location: str = "US", api_endpoint: str | None = None, credentials: Any = None,
                 timeout: float = 300.0, labels: Mapping[str, str] | None = None, client: Any = None):
        self._bq = require("google.cloud.bigquery")
        self._exc = require("google.api_core.exceptions")
        self.project = project
        self.location = location
        self.timeout = timeout
        # Every API call's retries end with the timeout too: the client's default retry keeps
        # retrying a connection error for 600 s whatever per-request timeout is given, so an
        # unreachable endpoint hung each call for ten minutes.
        self._retry = self._bq.DEFAULT_RETRY.with_timeout(timeout)
        self._errors = (self._exc.GoogleAPICallError, self._exc.RetryError, TimeoutError)
        self.default_labels = {"pipectl": "true", **dict(labels or {})}
        api_endpoint = api_endpoint or os.environ.get(EMULATOR_ENV) or None
        self.emulated = bool(api_endpoint) and "googleapis.com" not in str(api_endpoint)
        if client is None:
            options = None
            if api_endpoint:
                options = require("google.api_core.client_options").ClientOptions(api_endpoint=api_endpoint)
                if credentials is None:
                    credentials = require("google.auth.credentials").AnonymousCredentials()
            client = self._bq.Client(project=project, location=location, credentials=credentials, client_options=options)
        self._client = client
        self._params_dataset = False  # the emulator's parameter tables' dataset exists (see _bind_in_table)

    # ------------------------------------------------------------------ helpers
    def _table_id(self, fqn: str) -> str:
        parts = fqn.replace(":", ".").split(".")
        if len(parts) == 2:
            return f"{self.project}.{parts[0]}.{parts[1]}"
        if len(parts) == 3:
            return fqn.replace(":", ".")
        raise BackendError(f"table name '{fqn}' must be dataset.table", hint="qualify the table with its dataset in processors.yaml")

    def _params(self, sql: str, params: Sequence[QueryParam]) -> list[Any]:
        from framework.sql.params import coerce_value

        out = []
        for p in params:
            if not re.search(rf"@{re.escape(p.name)}\b", sql):
                continue  # parameters the statement does not use are not sent
            if p.array:
                out.append(self._bq.ArrayQueryParameter(p.name, p.type, [coerce_value(v, p.type) for v in (p.value or [])]))
            else:
                out.append(self._bq.ScalarQueryParameter(p.name, p.type, coerce_value(p.value, p.type)))
        return out

    def _labels(self, labels: Mapping[str, str] | None) -> dict[str, str]:
        return sanitize_labels({**self.default_labels, **dict(labels or {})})

    def _translate(self, exc: Exception, sql: str = "", table: str | None = None) -> BackendError:
        """BigQuery API errors -> BackendError naming the table and the fix."""
        text = getattr(exc, "message", None) or str(exc)
        text = text.split("\n")[0]
        first = next((ln.strip() for ln in sql.strip().splitlines() if ln.strip()), "")[:120]
        where = f" (BigQuery project {self.project}{'; ' + first if first else ''})"
        m = _NOT_FOUND_TABLE.search(text)
        if m or (isinstance(exc, self._exc.NotFound) and table):
            name = m.group(1) if m else table
            return BackendError(f"table {name} does not exist{where}",
                                hint="create it first (pipectl apply, or run the upstream processor) and check the name in processors.yaml")
        m = _NOT_FOUND_DATASET.search(text)
        if m:
            return BackendError(f"dataset {m.group(1)} does not exist{where}", hint="create it with pipectl apply")
        if isinstance(exc, self._exc.Forbidden):
            return BackendError(f"permission denied: {text}{where}",
                                hint="grant the service account roles/bigquery.jobUser and dataEditor on the dataset")
        if isinstance(exc, self._exc.BadRequest):
            hint = ("a column named in SQL is missing or mistyped: compare processors.yaml with the table (pipectl validate, pipectl plan)"
                    if re.search(r"Unrecognized name|not found|Binder Error", text, re.I)
                    else "the rendered SQL or the rows are invalid for BigQuery: see the SQL with `pipectl render`")
            return BackendError(f"{text}{where}" + (f" [table {table}]" if table else ""), hint=hint)
        if isinstance(exc, self._exc.RetryError):  # connection errors retried until the timeout
            cause = getattr(exc, "cause", None)
            return BackendError(f"BigQuery did not answer within {self.timeout}s" + (f" for table {table}" if table else "")
                                + f"{where}; last error: {cause or text}",
                                hint="check connectivity and the endpoint (BIGQUERY_EMULATOR_HOST, credentials), "
                                     "or raise the warehouse timeout in pipectl.yaml")
        if isinstance(exc, (TimeoutError, self._exc.DeadlineExceeded)):
            return BackendError(f"BigQuery job did not finish within {self.timeout}s{where}",
                                hint="raise the warehouse timeout in pipectl.yaml or make the statement cheaper")
        return BackendError(f"{text}{where}")

    def _run(self, sql: str, params: Sequence[QueryParam], labels: Mapping[str, str] | None, **config: Any) -> Any:
        job_config = self._bq.QueryJobConfig(query_parameters=self._params(sql, params), labels=self._labels(labels), **config)
        try:
            job = self._client.query(sql, job_config=job_config, location=self.location, retry=self._retry,
                                     timeout=self.timeout)
            if config.get("dry_run"):
                return job
            return job, job.result(retry=self._retry, timeout=self.timeout)
        except self._errors as exc:
            raise self._translate(exc, sql) from exc

    # ------------------------------------------------------------------ protocol
    def query(self, sql: str, params: Sequence[QueryParam] = (), labels: Mapping[str, str] | None = None) -> list[dict[str, Any]]:
        _, rows = self._run(sql, params, labels)
        try:  # later result pages are fetched while iterating: their errors are translated too
            return [dict(row.items()) for row in rows]
        except self._errors as exc:
            raise self._translate(exc, sql) from exc

    def execute_script(self, sql: str, params: Sequence[QueryParam] = (), labels: Mapping[str, str] | None = None) -> None:
        """One BigQuery script (one job); several DML statements run inside one transaction."""
        from framework.backends.duckdb import split_statements  # pure text helper, no driver import

        statements = split_statements(sql)
        if not statements:
            return
        if len(statements) > 1 and not _TXN.search(sql) and not any(_DDL.match(s) for s in statements):
            script = "BEGIN TRANSACTION;\n" + ";\n".join(statements) + ";\nCOMMIT TRANSACTION;"
        else:
            script = ";\n".join(statements) + (";" if len(statements) > 1 else "")
        if len(statements) > 1:
            self.run_script(script, params, labels)
        else:
            self._run(script, params, labels)

    def run_script(self, sql: str, params: Sequence[QueryParam] = (), labels: Mapping[str, str] | None = None) -> list[dict[str, Any]]:
        """Run a multi-statement script as one job; the rows of its last statement (a script's
        result on BigQuery is its last statement's, which the client fetches)."""
        stage = None
        if self.emulated and self._params(sql, params):
            sql, params, stage = self._bind_in_table(sql, params, labels)
        try:
            for attempt in range(TRANSACTION_ATTEMPTS):
                try:
                    _, rows = self._run(sql, params, labels)
                    return [dict(row.items()) for row in rows]
                except self._errors as exc:
                    raise self._translate(exc, sql) from exc
                except BackendError as exc:
                    # BigQuery cancels a transaction that mutates a table another transaction is
                    # mutating (the shared _pipectl state tables): it was rolled back whole, so
                    # running the script again is safe
                    if attempt + 1 == TRANSACTION_ATTEMPTS or not _TXN.search(sql) or not _ABORTED.search(str(exc)):
                        raise
                    time.sleep(random.uniform(0, min(8.0, 0.5 * 2 ** attempt)))
            raise AssertionError("unreachable")  # pragma: no cover - the loop returns or raises
        finally:
            if stage is not None:
                self.delete_table(stage)

    def _bind_in_table(self, sql: str, params: Sequence[QueryParam],
                       labels: Mapping[str, str] | None) -> tuple[str, Sequence[QueryParam], str]:
        """Emulator only (see the module docstring): the script's parameters as a one-row
        table made by a single-statement job (parameters bound there), each ``@name`` of the
        script read from it. Returns the script, no parameters, and the table to drop."""
        used = [p for p in params if re.search(rf"@{re.escape(p.name)}\b", sql)]
        if not self._params_dataset:
            self.create_dataset(EMULATOR_PARAMS_DATASET)
            self._params_dataset = True
        stage = f"{EMULATOR_PARAMS_DATASET}.params_{uuid.uuid4().hex[:12]}"
        table = f"`{self._table_id(stage)}`"
        cols = ", ".join(f"CAST(@{p.name} AS {'ARRAY<' + p.type + '>' if p.array else p.type}) AS `{p.name}`" for p in used)
        self._run(f"CREATE TABLE {table} AS SELECT {cols}", used, {**dict(labels or {}), "pipectl_job": "emulator_params"})
        return read_params_from(sql, {p.name for p in used}, table), (), stage

    def dry_run(self, sql: str, params: Sequence[QueryParam] = ()) -> int:
        """Bytes BigQuery would scan for ``sql`` (validates it without running it)."""
        job = self._run(sql, params, None, dry_run=True, use_query_cache=False)
        return int(job.total_bytes_processed or 0)

    def table_schema(self, fqn: str) -> tuple[Column, ...] | None:
        table = self.get_table(fqn)
        if table is None:
            return None
        return tuple(Column(f.name, _TYPES.get(f.field_type, f.field_type), f.mode or "NULLABLE", f.description or "")
                     for f in table.schema)

    def get_table(self, fqn: str) -> Any | None:
        """The google.cloud.bigquery Table (schema, partitioning, clustering), or None."""
        try:
            return self._client.get_table(self._table_id(fqn), retry=self._retry, timeout=self.timeout)
        except self._exc.NotFound:
            return None
        except self._errors as exc:
            raise self._translate(exc, table=fqn) from exc

    def list_datasets(self) -> list[str]:
        try:
            return sorted(d.dataset_id for d in self._client.list_datasets(retry=self._retry, timeout=self.timeout))
        except self._errors as exc:
            raise self._translate(exc) from exc

    def list_tables(self, dataset: str) -> list[str]:
        try:
            return sorted(t.table_id for t in self._client.list_tables(f"{self.project}.{dataset}", retry=self._retry, timeout=self.timeout))
        except self._exc.NotFound:
            return []
        except self._errors as exc:
            raise self._translate(exc) from exc

    def create_dataset(self, dataset: str) -> None:
        ds = self._bq.Dataset(f"{self.project}.{dataset}")
        ds.location = self.location
        try:
            self._client.create_dataset(ds, exists_ok=True, retry=self._retry, timeout=self.timeout)
        except self._errors as exc:
            raise BackendError(f"cannot create dataset {dataset} in project {self.project}: {getattr(exc, 'message', exc)}",
                               hint="dataset names: letters, digits and underscores; check permissions (bigquery.datasets.create)") from exc

    def dataset_exists(self, dataset: str) -> bool:
        try:
            self._client.get_dataset(f"{self.project}.{dataset}", retry=self._retry, timeout=self.timeout)
            return True
        except self._exc.NotFound:
            return False
        except self._errors as exc:
            raise self._translate(exc) from exc

    def drop_dataset(self, dataset: str) -> None:
        """Delete a dataset and its tables (plan/apply with --prune --allow-destructive only)."""
        try:
            self._client.delete_dataset(f"{self.project}.{dataset}", delete_contents=True, not_found_ok=True, retry=self._retry, timeout=self.timeout)
        except self._errors as exc:
            raise self._translate(exc) from exc

    def add_column(self, fqn: str, column: Column) -> None:
        """Append a NULLABLE/REPEATED column through the API (BigQuery cannot add REQUIRED ones)."""
        if column.mode == "REQUIRED":
            raise BackendError(f"table {fqn}: BigQuery cannot add the REQUIRED column '{column.name}' to an existing table",
                               hint="declare it NULLABLE, or recreate the table with --allow-destructive")
        table = self.get_table(fqn)
        if table is None:
            raise BackendError(f"table {fqn} does not exist", hint="run `pipectl plan` again")
        table.schema = list(table.schema) + self.schema_fields([column])
        try:
            self._client.update_table(table, ["schema"], retry=self._retry, timeout=self.timeout)
        except self._errors as exc:
            raise self._translate(exc, table=fqn) from exc

    def set_clustering(self, fqn: str, columns: Sequence[str]) -> None:
        """Change a table's clustering columns in place (applies to newly written data)."""
        table = self.get_table(fqn)
        if table is None:
            raise BackendError(f"table {fqn} does not exist", hint="run `pipectl plan` again")
        table.clustering_fields = list(columns)[:4] or None
        try:
            self._client.update_table(table, ["clustering_fields"], retry=self._retry, timeout=self.timeout)
        except self._errors as exc:
            raise self._translate(exc, table=fqn) from exc

    def schema_fields(self, columns: Sequence[Column]) -> list[Any]:
        return [self._bq.SchemaField(c.name, c.type, mode=c.mode or "NULLABLE", description=c.description or None)
                for c in columns]

    def create_table(self, table: Table) -> None:
        """Create ``table`` (no-op if it exists) with day partitioning and clustering."""
        bq_table = self._bq.Table(self._table_id(table.fqn), schema=self.schema_fields(table.columns))
        if table.partition_by:
            column = table.column(table.partition_by)
            if column is None or column.type not in _PARTITION_TYPES:
                raise BackendError(f"table {table.fqn}: partition column {table.partition_by} must be a DATE/TIMESTAMP/DATETIME column",
                                   location=table.location, hint="fix partition_by in processors.yaml")
            bq_table.time_partitioning = self._bq.TimePartitioning(type_="DAY", field=table.partition_by)
        if table.cluster_by:
            bq_table.clustering_fields = list(table.cluster_by)[:4]
        try:
            self._client.create_table(bq_table, exists_ok=True, retry=self._retry, timeout=self.timeout)
        except self._errors as exc:
            raise self._translate(exc, table=table.fqn) from exc

    def delete_table(self, fqn: str) -> None:
        try:
            self._client.delete_table(self._table_id(fqn), not_found_ok=True, retry=self._retry, timeout=self.timeout)
        except self._errors as exc:
            raise self._translate(exc, table=fqn) from exc

    def insert_rows(self, fqn: str, rows: Iterable[Mapping[str, Any]], labels: Mapping[str, str] | None = None) -> int:
        """Append rows with one load job from NDJSON; returns the number of rows loaded."""
        rows = list(rows)
        if not rows:
            return 0
        payload = "\n".join(json.dumps(_json_value(dict(r))) for r in rows).encode()
        config = self._bq.LoadJobConfig(source_format="NEWLINE_DELIMITED_JSON", write_disposition="WRITE_APPEND",
                                        labels=self._labels(labels))
        try:
            job = self._client.load_table_from_file(io.BytesIO(payload), self._table_id(fqn), job_config=config,
                                                    location=self.location, timeout=self.timeout)
            job.result(retry=self._retry, timeout=self.timeout)
        except self._errors as exc:
            raise self._translate(exc, table=fqn) from exc
        return int(job.output_rows if job.output_rows is not None else len(rows))

    def merge_rows(self, fqn: str, rows: Iterable[Mapping[str, Any]], keys: Sequence[str],
                   labels: Mapping[str, str] | None = None) -> int:
        """Upsert ``rows`` into ``fqn`` by ``keys``: load into a staging table, then one MERGE
        (matched rows updated, new rows inserted). Returns the rows merged."""
        rows = list(rows)
        if not rows:
            return 0
        schema = self.table_schema(fqn)
        if schema is None:
            raise BackendError(f"table {fqn} does not exist", hint="create it first (pipectl apply)")
        names = [c.name for c in schema]
        missing = [k for k in keys if k not in names]
        if missing:
            raise BackendError(f"merge into {fqn}: key column(s) {', '.join(missing)} not in the table",
                               hint="the MERGE keys must be columns of the table (processors.yaml entity key)")
        dataset = fqn.replace(":", ".").split(".")[-2]
        stage = f"{dataset}._pipectl_stage_{uuid.uuid4().hex[:12]}"
        self.create_table(Table(dataset, stage.split(".")[1], schema))
        try:
            self.insert_rows(stage, rows, labels)
            cols = [c for c in names if any(c in r for r in rows)]
            on = " AND ".join(f"T.`{k}` = S.`{k}`" for k in keys)
            update = ", ".join(f"`{c}` = S.`{c}`" for c in cols if c not in keys)
            insert_cols = ", ".join(f"`{c}`" for c in cols)
            insert_vals = ", ".join(f"S.`{c}`" for c in cols)
            sql = (f"MERGE `{self._table_id(fqn)}` AS T USING `{self._table_id(stage)}` AS S ON {on}\n"
                   + (f"WHEN MATCHED THEN UPDATE SET {update}\n" if update else "")
                   + f"WHEN NOT MATCHED THEN INSERT ({insert_cols}) VALUES ({insert_vals})")
            self._run(sql, (), labels)
        finally:
            self.delete_table(stage)
        return len(rows)

    def close(self) -> None:
        self._client.close()
