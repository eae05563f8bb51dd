-- Latest injury report entry per player for the day (a report is re-issued several times).
SELECT
  r.game_date,
  r.player_lookup,
  r.player_name,
  UPPER(TRIM(r.team_abbr)) AS team_abbr,
  r.injury_status,
  r.reason,
  r.report_time,
  CAST(CURRENT_TIMESTAMP AS TIMESTAMP) AS processed_at
FROM (
  SELECT
    i.*,
    ROW_NUMBER() OVER (PARTITION BY i.player_lookup ORDER BY i.report_time DESC, i.injury_status) AS rn
  FROM {{ source('landing_injury_report') }} AS i
  WHERE i.game_date = {{ partition }}
    AND {{ entity_filter('i.player_lookup') }}
) AS r
WHERE r.rn = 1
