"""Regenerate framework/schemas/*.json (run from the repo root): python tools/gen_schemas.py"""
import json
duration = {"description": "Seconds as an integer, or a string like '90s', '5m', '1h', '1d'.",
            "oneOf": [{"type": "integer", "minimum": 0}, {"type": "string", "pattern": r"^\d+(\.\d+)?\s*(s|m|h|d)$"}]}
ident = {"type": "string", "pattern": r"^[A-Za-z_][A-Za-z0-9_]*$"}
col_types = ["STRING", "INT64", "FLOAT64", "NUMERIC", "BOOL", "DATE", "TIMESTAMP", "DATETIME", "JSON", "BYTES"]
column = {"type": "object", "additionalProperties": False, "required": ["name", "type"],
          "properties": {"name": ident, "type": {"enum": col_types}, "mode": {"enum": ["NULLABLE", "REQUIRED", "REPEATED"]},
                         "description": {"type": "string"}}}
names = {"type": "array", "items": {"type": "string"}, "uniqueItems": True}
input_key = {"type": "string", "minLength": 1,
             "description": "SQL expression of the entity key the transform writes for these rows, e.g. UPPER(TRIM(team_abbr)); change detection renders it too"}
table = {"type": "object", "additionalProperties": False, "required": ["table", "columns"],
         "properties": {"table": {"type": "string", "pattern": r"^([A-Za-z_][A-Za-z0-9_]*\.)?[A-Za-z_][A-Za-z0-9_]*$",
                                  "description": "'table' (dataset of the phase) or 'dataset.table'"},
                        "columns": {"type": "array", "minItems": 1, "items": {"$ref": "#/$defs/column"}},
                        "partition_by": {"type": "string"}, "cluster_by": names}}
test_common = {"name": ident, "severity": {"enum": ["error", "warn"], "description": "error fails the run; warn reports"},
               "where": {"type": "string", "minLength": 1, "description": "SQL filter on the tested rows"}}
proc_schema = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "$id": "https://pipectl.dev/schemas/processors.schema.json",
    "title": "pipectl processors.yaml",
    "description": "Processors, phases, entity kinds and sources of a pipectl project.",
    "type": "object", "additionalProperties": False,
    "required": ["version", "project", "partition", "phases", "processors"],
    "properties": {
        "version": {"const": 1},
        "project": ident,
        "description": {"type": "string"},
        "partition": {"type": "object", "additionalProperties": False, "required": ["column"],
                      "properties": {"column": ident, "type": {"enum": ["DATE", "STRING", "INT64", "TIMESTAMP"]}}},
        "entity_kinds": {"type": "object", "additionalProperties": {
            "type": "object", "additionalProperties": False, "required": ["key"],
            "properties": {"key": ident, "type": {"enum": col_types}, "description": {"type": "string"}}}},
        "entity_mappings": {"type": "array", "items": {
            "type": "object", "additionalProperties": False, "required": ["from", "to", "via"],
            "properties": {"name": ident, "from": {"type": "string"}, "to": {"type": "string"},
                           "from_column": ident, "to_column": ident,
                           "via": {"type": "string", "description": "processor or source whose table holds both keys"}}}},
        "sources": {"type": "array", "items": {
            "type": "object", "additionalProperties": False, "required": ["name", "table", "columns"],
            "properties": {"name": ident, "table": {"type": "string"}, "entity": {"type": "string"},
                           "description": {"type": "string"},
                           "change_columns": names,
                           "columns": {"type": "array", "minItems": 1, "items": {"$ref": "#/$defs/column"}}}}},
        "phases": {"type": "array", "minItems": 1, "items": {"$ref": "#/$defs/phase"}},
        "processors": {"type": "array", "items": {"$ref": "#/$defs/processor"}},
        "sweep": {"type": "object", "additionalProperties": False,
                  "description": "The scheduled sweep (deadlines, tiered timeouts, debounce, pending triggers without a "
                                 "new message). On Google Cloud `pipectl apply` manages a Cloud Scheduler job publishing "
                                 "to `topic` on this schedule; the function bundle's handle_sweep runs it.",
                  "properties": {"schedule": {"type": "string", "description": "unix cron, 5 fields; default '* * * * *' (every minute)"},
                                 "time_zone": {"type": "string", "description": "IANA time zone of the schedule; default Etc/UTC"},
                                 "topic": {"type": "string", "pattern": r"^[A-Za-z][A-Za-z0-9._~%+-]{2,254}$",
                                           "description": "topic the scheduler publishes to; default pipectl-sweep-<project>"},
                                 "enabled": {"type": "boolean", "description": "false: no scheduler job (run `pipectl sweep` yourself)"}}},
    },
    "$defs": {
        "data_test": {
            "type": "object", "minProperties": 1, "maxProperties": 1,
            "description": "One data test: exactly one of not_null, unique, accepted_values, relationships, expression, sql.",
            "properties": {
                "not_null": {"oneOf": [ident, {"type": "array", "minItems": 1, "items": ident},
                                       {"$ref": "#/$defs/test_columns"}],
                             "description": "No NULL in these columns (rows of the tested partition)."},
                "unique": {"oneOf": [ident, {"type": "array", "minItems": 1, "items": ident},
                                     {"$ref": "#/$defs/test_columns"}],
                           "description": "No two rows share these columns' values (their combination)."},
                "accepted_values": {"type": "object", "additionalProperties": False, "required": ["column", "values"],
                                    "properties": {**test_common, "column": ident,
                                                   "values": {"type": "array", "minItems": 1, "uniqueItems": True,
                                                              "items": {"type": ["string", "number", "boolean"]}}}},
                "relationships": {"type": "object", "additionalProperties": False, "required": ["column", "to"],
                                  "properties": {**test_common, "column": ident,
                                                 "to": {"type": "string", "description": "processor or source"},
                                                 "field": {**ident, "description": "its column (default: the same name)"}}},
                "expression": {"type": "object", "additionalProperties": False, "required": ["sql"],
                               "properties": {**test_common, "sql": {"type": "string", "minLength": 1,
                                                                     "description": "a predicate every row satisfies"}}},
                "sql": {"type": "object", "additionalProperties": False, "required": ["sql", "name"],
                        "properties": {**test_common, "sql": {"type": "string", "minLength": 1,
                                                              "description": "SELECT returning the failing rows; {{ partition }} is the partition parameter"}}},
            },
            "additionalProperties": False,
        },
        "test_columns": {"type": "object", "additionalProperties": False, "required": ["columns"],
                         "properties": {**test_common, "columns": {"type": "array", "minItems": 1, "items": ident}}},
        "duration": duration,
        "column": column,
        "phase": {"type": "object", "additionalProperties": False, "required": ["name", "order"],
                  "properties": {"name": ident, "order": {"type": "integer"}, "dataset": ident,
                                 "description": {"type": "string"},
                                 "transition": {"$ref": "#/$defs/transition"}}},
        "transition": {"type": "object", "additionalProperties": False,
                       "required": ["completion_topic"],
                       "properties": {
                           "mode": {"enum": ["trigger", "monitor"]},
                           "completion_topic": {"type": "string"},
                           "trigger_topic": {"type": "string"},
                           "expected": names, "critical": names,
                           "rule": {"oneOf": [
                               {"enum": ["all"]},
                               {"type": "object", "additionalProperties": False, "required": ["type"],
                                "properties": {"type": {"const": "all"}}},
                               {"type": "object", "additionalProperties": False, "required": ["type", "quorum"],
                                "properties": {"type": {"const": "quorum"},
                                               "quorum": {"type": "number", "exclusiveMinimum": 0, "maximum": 1}}},
                               {"type": "object", "additionalProperties": False, "required": ["type", "tiers"],
                                "properties": {"type": {"const": "tiered"}, "tiers": {"type": "array", "minItems": 1, "items": {
                                    "type": "object", "additionalProperties": False, "required": ["after", "min_complete"],
                                    "properties": {"after": {"$ref": "#/$defs/duration"},
                                                   "min_complete": {"type": "integer", "minimum": 0}}}}}}]},
                           "deadline": {"$ref": "#/$defs/duration"},
                           "debounce": {"$ref": "#/$defs/duration"},
                           "quality_gates": {"type": "array", "items": {
                               "type": "object", "additionalProperties": False, "required": ["name", "processor"],
                               "properties": {"name": ident, "processor": {"type": "string"},
                                              "min_rows": {"type": "integer", "minimum": 0}}}}}},
        "input": {"oneOf": [
            {"type": "string", "description": "name of an upstream processor"},
            {"type": "object", "additionalProperties": False, "required": ["processor"],
             "properties": {"processor": {"type": "string"}, "critical": {"type": "boolean"}, "compare": names, "mapping": {"type": "string"},
                            "key": input_key}},
            {"type": "object", "additionalProperties": False, "required": ["source"],
             "properties": {"source": {"type": "string"}, "critical": {"type": "boolean"}, "compare": names, "mapping": {"type": "string"},
                            "key": input_key}}]},
        "processor": {"type": "object", "additionalProperties": False, "required": ["name", "phase", "transform"],
                      "properties": {
                          "name": ident, "phase": {"type": "string"}, "description": {"type": "string"},
                          "enabled": {"type": "boolean"}, "aliases": dict(names), "entity": {"type": "string"},
                          "tags": {"type": "array", "uniqueItems": True, "items": {"type": "string", "pattern": r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$"},
                                   "description": "Labels for selection, as dbt tags: `pipectl run --select tag:daily`."},
                          "inputs": {"type": "array", "items": {"$ref": "#/$defs/input"}},
                          "output": table,
                          "change_detection": {"type": "object", "additionalProperties": False,
                                               "properties": {"columns": {"oneOf": [{"const": "all"}, names]},
                                                              "enabled": {"type": "boolean"}}},
                          "transform": {"type": "object", "additionalProperties": False,
                                        "oneOf": [{"required": ["sql"]}, {"required": ["python"]}],
                                        "properties": {"sql": {"type": "string"},
                                                       "python": {"type": "string", "pattern": r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$"}}},
                          "tests": {"type": "array", "items": {"$ref": "#/$defs/data_test"},
                                    "description": "Data tests on the output (dbt's generic tests), run after the processor and by `pipectl test`."},
                          "timeout": {"$ref": "#/$defs/duration",
                                      "description": "How long one execution may take: a run, or one task of a fan-out (default 10m). "
                                                     "Sizes the worker's request timeout and push ack deadlines (docs/gcp.md#sizing)."},
                          "fanout": {"type": "object", "additionalProperties": False, "required": ["task_topic"],
                                     "properties": {"task_topic": {"type": "string"},
                                                    "workers": {"type": "integer", "minimum": 1},
                                                    "max_attempts": {"type": "integer", "minimum": 1}}}}},
    },
}
sub = {"type": "object", "additionalProperties": False, "required": ["name", "consumer"],
       "properties": {"name": {"type": "string"}, "consumer": {"type": "string"},
                      "ack_deadline": {"$ref": "#/$defs/duration"},
                      "max_delivery_attempts": {"type": "integer", "minimum": 5, "maximum": 100,
                                                "description": "Pub/Sub allows 5-100"},
                      "dead_letter_topic": {"type": "string"}, "filter": {"type": "string"},
                      "push_endpoint": {"type": "string"}}}
ref = {"type": "string", "pattern": r"^(processor|phase|orchestrator|external|fanout):[A-Za-z0-9_.\-]+$",
       "description": "processor:NAME, phase:NAME, orchestrator:PHASE, fanout:PROCESSOR or external:NAME"}
topics_schema = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "$id": "https://pipectl.dev/schemas/topics.schema.json",
    "title": "pipectl topics.yaml", "description": "Topics and subscriptions of a pipectl project.",
    "type": "object", "additionalProperties": False, "required": ["version", "topics"],
    "properties": {"version": {"const": 1},
                   "topics": {"type": "array", "items": {
                       "type": "object", "additionalProperties": False, "required": ["name", "contract"],
                       "properties": {"name": {"type": "string", "pattern": r"^[A-Za-z][A-Za-z0-9._~%+\-]{2,254}$"},
                                      "contract": {"enum": ["completion", "trigger", "task", "dead_letter"]},
                                      "description": {"type": "string"},
                                      "producers": {"type": "array", "items": ref, "uniqueItems": True},
                                      "consumers": {"type": "array", "items": ref, "uniqueItems": True},
                                      "dead_letter_topic": {"type": "string"},
                                      "subscriptions": {"type": "array", "items": {"$ref": "#/$defs/subscription"}}}}}},
    "$defs": {"duration": duration, "subscription": sub},
}

# Descriptions shown by editors (YAML language server) on hover and completion.
DESCRIBE = [
    ((proc_schema, ("properties", "project")), "Project name (snake_case); prefixes resources and finds pipelines/<project>/ hooks."),
    ((proc_schema, ("properties", "partition")), "The column every table is partitioned by (e.g. game_date); runs are per partition."),
    ((proc_schema, ("properties", "entity_kinds")), "Kinds of entity that change detection counts, each with its key column and type."),
    ((proc_schema, ("properties", "entity_mappings")), "A change to an entity of one kind marks entities of another kind changed, via a table holding both keys."),
    ((proc_schema, ("properties", "sources")), "External tables the first phase reads (scraper landing zone)."),
    ((proc_schema, ("properties", "phases")), "Ordered stages; each declares the policy of its transition to the next."),
    ((proc_schema, ("properties", "processors")), "Units of work: inputs, output table, entity kind, change detection, transform."),
    ((proc_schema, ("$defs", "phase", "properties", "order")), "Position of the phase; phases run in increasing order."),
    ((proc_schema, ("$defs", "phase", "properties", "dataset")), "Default dataset of the phase's output tables."),
    ((proc_schema, ("$defs", "transition", "properties", "mode")), "trigger: publish the next phase's trigger; monitor: record and report only."),
    ((proc_schema, ("$defs", "transition", "properties", "expected")), "Processors the transition waits for (default: every enabled processor of the phase)."),
    ((proc_schema, ("$defs", "transition", "properties", "critical")), "Processors that must succeed; a failure blocks the transition and alerts."),
    ((proc_schema, ("$defs", "transition", "properties", "rule")), "all | {type: quorum, quorum: 0.8} | {type: tiered, tiers: [{after: 1h, min_complete: 4}]}."),
    ((proc_schema, ("$defs", "transition", "properties", "deadline")), "Hard deadline from the first completion; enforced by `pipectl sweep`."),
    ((proc_schema, ("$defs", "transition", "properties", "debounce")), "Window that closes an update round of the first phase."),
    ((proc_schema, ("$defs", "transition", "properties", "quality_gates")), "Blocking checks (minimum rows of a processor's output) before triggering."),
    ((proc_schema, ("$defs", "processor", "properties", "name")), "Identity everywhere (messages, expected lists, run history)."),
    ((proc_schema, ("$defs", "processor", "properties", "aliases")), "Legacy names this processor may publish under (class names, table names)."),
    ((proc_schema, ("$defs", "processor", "properties", "entity")), "Entity kind of the output rows; change detection runs per entity of this kind."),
    ((proc_schema, ("$defs", "processor", "properties", "inputs")), "Upstream processors (by name) or {source: NAME}; {critical: true} refuses to run on zero upstream rows."),
    ((proc_schema, ("$defs", "processor", "properties", "output")), "The output table: name (or dataset.table), columns, partitioning, clustering."),
    ((proc_schema, ("$defs", "processor", "properties", "change_detection")), "Which output columns downstream processors compare (default: all)."),
    ((proc_schema, ("$defs", "processor", "properties", "transform")), "{sql: path/to/file.sql} (Jinja: ref, source, partition, entity_filter) or {python: module:function}."),
    ((proc_schema, ("$defs", "processor", "properties", "fanout")), "Split a run into one task per entity on a task topic, executed by workers."),
    ((topics_schema, ("properties", "topics")), "Topics with their producers, consumers, message contract and subscriptions."),
]
for (schema, path), text in DESCRIBE:
    node = schema
    for part in path:
        node = node[part]
    node.setdefault("description", text)
json.dump(proc_schema, open("framework/schemas/processors.schema.json", "w"), indent=2)
json.dump(topics_schema, open("framework/schemas/topics.schema.json", "w"), indent=2)
