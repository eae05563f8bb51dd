"""OpenLineage run events for every processor run: START, then COMPLETE or FAIL.

Why: dbt, Dagster and Airflow emit OpenLineage, and Marquez, DataHub or OpenMetadata users
collect it; a pipeline that emits nothing is a hole in their lineage graph. Each processor
run is an OpenLineage run of the job ``<processor>`` (namespace: the target's ``namespace``,
default ``pipectl/<project>``), with

* inputs: the tables it reads (sources and upstream outputs) with their declared schema;
* outputs: its table, with the schema and the ``columnLineage`` facet derived from the
  transform's SQL (the facts ``pipectl validate`` checks, :func:`framework.sql.checks.column_lineage`);
* the ``parent`` run facet naming the update's correlation id (a run of the job
  ``<project>``), so all runs of one update hang under one parent, as ``pipectl trace`` shows;
* ``errorMessage`` on FAIL, ``processing_engine`` (pipectl and its version), ``jobType``.

Configured per target in pipectl.yaml (``lineage: {transport: console|file|http, ...}``);
the client (extra ``lineage``: openlineage-python) is imported only when a target asks for
it. Emitting never fails a run: a receiver that is down costs one warning per run.
"""
from __future__ import annotations

import datetime as dt
import logging
import uuid
from typing import Any, Mapping

from framework import __version__
from framework.errors import ConfigError, MissingDependencyError
from framework.manifest.model import Processor, Project, Table

log = logging.getLogger(__name__)
PRODUCER = f"https://pipectl.dev/producer/{__version__}"  # an URI naming pipectl and its version
TRANSPORTS = ("console", "file", "http")
_IDS = uuid.UUID("6f1c3a52-1d0e-4b8e-9a57-70697065637c")  # namespace of pipectl's run ids -> OpenLineage UUIDs


def run_uuid(run_id: str) -> str:
    """OpenLineage run ids are UUIDs; pipectl's are 16 hex digits: a stable UUIDv5 of them."""
    return str(uuid.uuid5(_IDS, str(run_id)))


def make_transport(config: Mapping[str, Any], project_root: Any) -> Any:
    """The openlineage-python transport of a target's ``lineage:`` block."""
    try:
        from openlineage.client.transport.console import ConsoleConfig, ConsoleTransport
        from openlineage.client.transport.file import FileConfig, FileTransport
        from openlineage.client.transport.http import HttpConfig, HttpTransport
    except ImportError as exc:
        raise MissingDependencyError("openlineage.client", "lineage") from exc
    kind = config.get("transport", "console")
    if kind == "console":
        return ConsoleTransport(ConsoleConfig())
    if kind == "file":
        from pathlib import Path

        path = Path(config.get("path") or ".pipectl/lineage.jsonl")
        path = path if path.is_absolute() else Path(project_root) / path
        path.parent.mkdir(parents=True, exist_ok=True)
        return FileTransport(FileConfig(log_file_path=str(path), append=True))
    if kind == "http":
        if not config.get("url"):
            raise ConfigError("pipectl.yaml: lineage transport http needs a url", hint="e.g. lineage: {transport: http, url: http://localhost:5000}")
        extra: dict[str, Any] = {}
        if config.get("api_key") is not None:  # {env: VAR} or {secret: projects/...}: never a literal (schema)
            from openlineage.client.transport.http import ApiKeyTokenProvider

            from framework.alerts.secrets import resolve

            key = resolve(config["api_key"], "pipectl.yaml: lineage.api_key")
            extra["auth"] = ApiKeyTokenProvider({"apiKey": key})  # Authorization: Bearer <key>
        return HttpTransport(HttpConfig(url=str(config["url"]), endpoint=str(config.get("endpoint") or "api/v1/lineage"),
                                        timeout=float(config.get("timeout") or 5.0), retry={"total": 0}, **extra))
    raise ConfigError(f"pipectl.yaml: unknown lineage transport '{kind}'", hint=f"one of {', '.join(TRANSPORTS)}")


class LineageEmitter:
    """Builds and emits the run events of one project on one target."""

    def __init__(self, project: Project, config: Mapping[str, Any], warehouse_type: str = "duckdb",
                 cloud_project: str | None = None, transport: Any = None):
        from openlineage.client import OpenLineageClient

        self.project = project
        self.namespace = str(config.get("namespace") or f"pipectl/{project.name}")
        self.warehouse_type = warehouse_type
        self.cloud_project = cloud_project
        self.client = OpenLineageClient(transport=transport or make_transport(config, project.root))
        self._columns: dict[str, Any] = {}

    # ---------------------------------------------------------------- datasets
    def dataset_name(self, table: Table) -> tuple[str, str]:
        """(namespace, name) as OpenLineage's naming spec has them: ``bigquery`` and
        ``project.dataset.table`` on BigQuery; ``duckdb://<project>`` and the fqn locally."""
        if self.warehouse_type == "bigquery":
            return "bigquery", f"{self.cloud_project}.{table.fqn}" if self.cloud_project else table.fqn
        return f"{self.warehouse_type}://{self.project.name}", table.fqn

    def _schema(self, table: Table) -> Any:
        from openlineage.client.facet_v2 import schema_dataset

        return schema_dataset.SchemaDatasetFacet(fields=[
            schema_dataset.SchemaDatasetFacetFields(name=c.name, type=c.type, description=c.description or None)
            for c in table.columns])

    def _inputs(self, proc: Processor) -> list[Any]:
        from openlineage.client.event_v2 import InputDataset

        out = []
        for inp in proc.inputs:
            table = (self.project.sources[inp.name].table if inp.kind == "source" and inp.name in self.project.sources
                     else getattr(self.project.processors.get(inp.name), "output", None))
            if table is not None:
                ns, name = self.dataset_name(table)
                out.append(InputDataset(namespace=ns, name=name, facets={"schema": self._schema(table)}))
        return out

    def _column_lineage(self, proc: Processor) -> Any:
        from openlineage.client.facet_v2 import column_lineage_dataset as cl

        if proc.name not in self._columns:
            from framework.sql.checks import column_lineage

            by_fqn = {t.fqn: t for t in [*(s.table for s in self.project.sources.values()),
                                          *(p.output for p in self.project.processors.values() if p.output)]}
            facts = column_lineage(self.project, proc)
            fields = {}
            for column, bases in (facts or {}).items():
                inputs = []
                for fqn, col in bases:
                    if fqn in by_fqn:
                        ns, name = self.dataset_name(by_fqn[fqn])
                        inputs.append(cl.InputField(namespace=ns, name=name, field=col))
                if inputs:
                    fields[column] = cl.Fields(inputFields=inputs)
            self._columns[proc.name] = cl.ColumnLineageDatasetFacet(fields=fields) if fields else None
        return self._columns[proc.name]

    def _outputs(self, proc: Processor) -> list[Any]:
        from openlineage.client.event_v2 import OutputDataset

        if proc.output is None:
            return []
        facets: dict[str, Any] = {"schema": self._schema(proc.output)}
        lineage = self._column_lineage(proc)
        if lineage is not None:
            facets["columnLineage"] = lineage
        ns, name = self.dataset_name(proc.output)
        return [OutputDataset(namespace=ns, name=name, facets=facets)]

    # ---------------------------------------------------------------- events
    def event(self, state: str, proc: Processor, run_id: str, correlation_id: str | None,
              partition: Any, error: str | None = None) -> Any:
        from openlineage.client.event_v2 import Job, Run, RunEvent, RunState
        from openlineage.client.facet_v2 import error_message_run, job_type_job, parent_run, processing_engine_run

        run_facets: dict[str, Any] = {
            "processing_engine": processing_engine_run.ProcessingEngineRunFacet(version=__version__, name="pipectl"),
        }
        if correlation_id:
            run_facets["parent"] = parent_run.ParentRunFacet(
                run=parent_run.Run(runId=run_uuid(correlation_id)),
                job=parent_run.Job(namespace=self.namespace, name=self.project.name))
        if error:
            run_facets["errorMessage"] = error_message_run.ErrorMessageRunFacet(message=error, programmingLanguage="SQL"
                                                                                if proc.transform.sql else "PYTHON")
        job_facets = {"jobType": job_type_job.JobTypeJobFacet(processingType="BATCH", integration="PIPECTL",
                                                              jobType="PROCESSOR")}
        return RunEvent(eventType=getattr(RunState, state), eventTime=dt.datetime.now(dt.timezone.utc).isoformat(),
                        producer=PRODUCER, run=Run(runId=run_uuid(run_id), facets=run_facets),
                        job=Job(namespace=self.namespace, name=proc.name, facets=job_facets),
                        inputs=self._inputs(proc), outputs=self._outputs(proc))

    def emit(self, state: str, proc: Processor, run_id: str, correlation_id: str | None, partition: Any,
             error: str | None = None) -> None:
        """Emit one event; a failing receiver is a warning, never a failed run."""
        try:
            self.client.emit(self.event(state, proc, run_id, correlation_id, partition, error))
        except Exception as exc:  # noqa: BLE001 - lineage is a side channel: logged, the run goes on
            log.warning("OpenLineage %s event of %s (run %s) not delivered: %s", state, proc.name, run_id, exc)


def emitter_for(project: Project, target: Any) -> LineageEmitter | None:
    """The emitter of a target's ``lineage:`` block, or None when it has none."""
    config = dict(getattr(target, "settings", {}).get("lineage") or {})
    if not config:
        return None
    warehouse = getattr(getattr(target, "warehouse", None), "type", "duckdb")
    return LineageEmitter(project, config, warehouse, target.settings.get("project"))


__all__ = ["LineageEmitter", "PRODUCER", "emitter_for", "make_transport", "run_uuid"]
