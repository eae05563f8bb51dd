-- upgrade processed-fingerprint state: _pipectl.processed_fingerprints (format 1) -> _pipectl.entity_fingerprints (format 2)
INSERT INTO _pipectl.entity_fingerprints (processor, partition_key, entity_key, fingerprint, state_format, run_id, processed_at)
SELECT l.processor, l.partition_key, l.entity_key, CAST(NULL AS INT64), 1, MAX(l.run_id), MAX(l.processed_at)
FROM _pipectl.processed_fingerprints AS l
WHERE NOT EXISTS (
  SELECT 1 FROM _pipectl.entity_fingerprints AS s
  WHERE s.processor = l.processor AND s.partition_key = l.partition_key
)
GROUP BY l.processor, l.partition_key, l.entity_key
;
DROP TABLE _pipectl.processed_fingerprints;
