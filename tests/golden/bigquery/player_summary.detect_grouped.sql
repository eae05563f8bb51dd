-- change detection for processor player_summary (state format 2, grouped)
WITH
current_rows AS (
  -- input player_boxscores (entity): raw.player_boxscores
  SELECT
    CAST(i.player_lookup AS STRING) AS entity_key,
    FARM_FINGERPRINT(TO_JSON_STRING(STRUCT('player_boxscores', i.points, i.minutes))) AS row_hash
  FROM raw.player_boxscores AS i
  WHERE i.game_date = @game_date
    AND i.player_lookup IS NOT NULL
  UNION ALL
  -- input schedule (partition): landing.schedule
  SELECT
    '__partition__' AS entity_key,
    FARM_FINGERPRINT(TO_JSON_STRING(STRUCT('schedule', i.home, i.away, i.`order`))) AS row_hash
  FROM landing.schedule AS i
  WHERE i.game_date = @game_date
),
current_fingerprints AS (
  SELECT entity_key, FARM_FINGERPRINT(CONCAT(CAST(COUNT(*) AS STRING), ':', CAST(SUM(row_hash >> 32) AS STRING), ':', CAST(SUM(row_hash & 4294967295) AS STRING))) AS fingerprint
  FROM current_rows
  GROUP BY entity_key
),
previous_fingerprints AS (
  SELECT entity_key, fingerprint, state_format
  FROM _pipectl.entity_fingerprints
  WHERE processor = @processor
    AND partition_key = CAST(@game_date AS STRING)
)
SELECT
  CASE WHEN c.fingerprint IS DISTINCT FROM p.fingerprint OR p.fingerprint IS NULL THEN COALESCE(c.entity_key, p.entity_key) END AS entity_key,
  CASE WHEN p.entity_key IS NULL THEN 'insert' WHEN c.entity_key IS NULL THEN 'delete' ELSE 'update' END AS operation,
  MAX(c.fingerprint) AS fingerprint,
  COUNT(CASE WHEN c.entity_key <> '__partition__' THEN 1 END) AS entities,
  COUNT(p.entity_key) AS previous_rows,
  MIN(p.state_format) AS state_format
FROM current_fingerprints AS c
FULL OUTER JOIN previous_fingerprints AS p
  ON c.entity_key = p.entity_key
GROUP BY 1, 2
-- parameters: game_date, processor
