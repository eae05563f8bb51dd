-- processed-fingerprint state (read by detect.sql.j2, written by record.sql.j2)
CREATE SCHEMA IF NOT EXISTS _pipectl;
CREATE TABLE IF NOT EXISTS _pipectl.entity_fingerprints (
  processor VARCHAR NOT NULL,
  partition_key VARCHAR NOT NULL,
  entity_key VARCHAR NOT NULL,
  fingerprint BIGINT,
  state_format BIGINT NOT NULL,
  run_id VARCHAR,
  processed_at TIMESTAMP
);

-- change-set history (written by framework.runtime.changes.record_change_set)
CREATE SCHEMA IF NOT EXISTS _pipectl;
CREATE TABLE IF NOT EXISTS _pipectl.change_sets (
  processor VARCHAR NOT NULL,
  partition_key VARCHAR NOT NULL,
  entity_kind VARCHAR,
  entity_key VARCHAR,
  operation VARCHAR NOT NULL,
  fingerprint VARCHAR,
  full_batch BOOLEAN,
  fallback_reason VARCHAR,
  total_entities BIGINT,
  run_id VARCHAR,
  correlation_id VARCHAR,
  recorded_at TIMESTAMP
);
