-- Latest snapshot of each book's points line per player; lines outside 0.5..80 are scraper noise.
SELECT
  p.game_date,
  p.game_id,
  p.player_lookup,
  LOWER(p.bookmaker) AS bookmaker,
  p.points_line,
  p.over_price,
  p.under_price,
  p.snapshot_time,
  CAST(CURRENT_TIMESTAMP AS TIMESTAMP) AS processed_at
FROM (
  SELECT
    x.*,
    ROW_NUMBER() OVER (PARTITION BY x.player_lookup, x.bookmaker ORDER BY x.snapshot_time DESC) AS rn
  FROM {{ source('landing_odds_player_props') }} AS x
  WHERE x.game_date = {{ partition }}
    AND {{ entity_filter('x.player_lookup') }}
) AS p
WHERE p.rn = 1
  AND p.points_line BETWEEN 0.5 AND 80
