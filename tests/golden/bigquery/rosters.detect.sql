-- change detection for processor rosters (state format 2, rows joined)
WITH
current_fingerprints AS (
  SELECT entity_key, row_hash, FARM_FINGERPRINT(CONCAT('1:', CAST(row_hash >> 32 AS STRING), ':', CAST(row_hash & 4294967295 AS STRING))) AS fingerprint
  FROM (
    -- input rosters_landing (entity): landing.rosters
    SELECT
      CAST(i.player_lookup AS STRING) AS entity_key,
      FARM_FINGERPRINT(TO_JSON_STRING(STRUCT(i.team_abbr))) AS row_hash
    FROM landing.rosters AS i
    WHERE i.game_date = @game_date
      AND i.player_lookup IS NOT NULL
  ) AS r
),
previous_fingerprints AS (
  SELECT entity_key, fingerprint, state_format
  FROM _pipectl.entity_fingerprints
  WHERE processor = @processor
    AND partition_key = CAST(@game_date AS STRING)
),
compared AS (
  SELECT
    CASE WHEN c.fingerprint IS DISTINCT FROM p.fingerprint OR p.fingerprint IS NULL THEN COALESCE(c.entity_key, p.entity_key) END AS entity_key,
    CASE WHEN p.entity_key IS NULL THEN 'insert' WHEN c.entity_key IS NULL THEN 'delete' ELSE 'update' END AS operation,
    CASE WHEN COUNT(c.entity_key) > 0 THEN FARM_FINGERPRINT(CONCAT(CAST(COUNT(c.entity_key) AS STRING), ':', CAST(SUM(c.row_hash >> 32) AS STRING), ':', CAST(SUM(c.row_hash & 4294967295) AS STRING))) END AS fingerprint,
    MAX(p.fingerprint) AS previous_fingerprint,
    COUNT(c.entity_key) AS current_rows,
    COUNT(p.entity_key) AS previous_rows,
    MIN(p.state_format) AS state_format
  FROM current_fingerprints AS c
  FULL OUTER JOIN previous_fingerprints AS p
    ON c.entity_key = p.entity_key
  GROUP BY 1, 2
)
SELECT
  CASE WHEN entity_key IS NOT NULL AND (fingerprint IS DISTINCT FROM previous_fingerprint OR previous_fingerprint IS NULL)
       THEN entity_key END AS entity_key,
  operation,
  MAX(fingerprint) AS fingerprint,
  SUM(CASE WHEN entity_key IS NULL THEN current_rows WHEN current_rows > 0 THEN 1 ELSE 0 END) AS entities,
  SUM(CASE WHEN entity_key IS NULL THEN previous_rows WHEN previous_rows > 0 THEN 1 ELSE 0 END) AS previous_rows,
  MIN(state_format) AS state_format
FROM compared
GROUP BY 1, 2
UNION ALL
SELECT CAST(NULL AS STRING), 'previous', CAST(NULL AS INT64), COUNT(*), CAST(NULL AS INT64), CAST(NULL AS INT64)
FROM _pipectl.entity_fingerprints
WHERE processor = @processor
  AND partition_key = CAST(@game_date AS STRING)
-- parameters: game_date, processor
