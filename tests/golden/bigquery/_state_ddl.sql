-- processed-fingerprint state (read by detect.sql.j2, written by record.sql.j2)
CREATE SCHEMA IF NOT EXISTS _pipectl;
CREATE TABLE IF NOT EXISTS _pipectl.entity_fingerprints (
  processor STRING NOT NULL,
  partition_key STRING NOT NULL,
  entity_key STRING NOT NULL,
  fingerprint INT64,
  state_format INT64 NOT NULL,
  run_id STRING,
  processed_at TIMESTAMP
)
CLUSTER BY processor, partition_key
;

-- change-set history (written by framework.runtime.changes.record_change_set)
CREATE SCHEMA IF NOT EXISTS _pipectl;
CREATE TABLE IF NOT EXISTS _pipectl.change_sets (
  processor STRING NOT NULL,
  partition_key STRING NOT NULL,
  entity_kind STRING,
  entity_key STRING,
  operation STRING NOT NULL,
  fingerprint STRING,
  full_batch BOOL,
  fallback_reason STRING,
  total_entities INT64,
  run_id STRING,
  correlation_id STRING,
  recorded_at TIMESTAMP
)
PARTITION BY DATE(recorded_at)
CLUSTER BY processor, partition_key
;
