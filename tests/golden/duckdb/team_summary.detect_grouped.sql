-- change detection for processor team_summary (state format 2, grouped)
WITH
current_rows AS (
  -- input player_boxscores (mapped): raw.player_boxscores
  SELECT
    CAST(m.target_key AS STRING) AS entity_key,
    hash('player_boxscores', i.player_lookup, i.points) AS row_hash
  FROM raw.player_boxscores AS i
  JOIN (
    SELECT DISTINCT m.player_lookup AS source_key, m.team_abbr AS target_key
    FROM raw.rosters AS m
    WHERE m.game_date = $game_date
  ) AS m
    ON m.source_key = i.player_lookup
  WHERE i.game_date = $game_date
    AND m.target_key IS NOT NULL
  UNION ALL
  -- input rosters (mapped): raw.rosters
  SELECT
    CAST(m.target_key AS STRING) AS entity_key,
    hash('rosters', i.player_lookup, i.team_abbr) AS row_hash
  FROM raw.rosters AS i
  JOIN (
    SELECT DISTINCT m.player_lookup AS source_key, m.team_abbr AS target_key
    FROM raw.rosters AS m
    WHERE m.game_date = $game_date
  ) AS m
    ON m.source_key = i.player_lookup
  WHERE i.game_date = $game_date
    AND m.target_key IS NOT NULL
),
current_fingerprints AS (
  SELECT entity_key, CAST(hash(COUNT(*), SUM(row_hash)) >> 1 AS BIGINT) AS fingerprint
  FROM current_rows
  GROUP BY entity_key
),
previous_fingerprints AS (
  SELECT entity_key, fingerprint, state_format
  FROM _pipectl.entity_fingerprints
  WHERE processor = $processor
    AND partition_key = CAST($game_date AS STRING)
)
SELECT
  CASE WHEN c.fingerprint IS DISTINCT FROM p.fingerprint OR p.fingerprint IS NULL THEN COALESCE(c.entity_key, p.entity_key) END AS entity_key,
  CASE WHEN p.entity_key IS NULL THEN 'insert' WHEN c.entity_key IS NULL THEN 'delete' ELSE 'update' END AS operation,
  MAX(c.fingerprint) AS fingerprint,
  COUNT(c.entity_key) AS entities,
  COUNT(p.entity_key) AS previous_rows,
  MIN(p.state_format) AS state_format
FROM current_fingerprints AS c
FULL OUTER JOIN previous_fingerprints AS p
  ON c.entity_key = p.entity_key
GROUP BY 1, 2
-- parameters: game_date, processor
