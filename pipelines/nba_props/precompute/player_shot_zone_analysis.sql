-- Each player's shot mix (share of attempts at the rim, mid range and from three) and his
-- accuracy by zone over his last 10 games before the day.
WITH recent AS (
  SELECT
    s.player_lookup,
    s.fg_attempted,
    s.three_attempted,
    s.three_made,
    s.rim_fg_attempted,
    s.rim_fg_made,
    s.mid_fg_attempted,
    s.mid_fg_made,
    ROW_NUMBER() OVER (PARTITION BY s.player_lookup ORDER BY s.game_date DESC) AS game_rank
  FROM {{ ref('player_game_summary') }} AS s
  WHERE s.game_date < {{ partition }}
    AND {{ entity_filter('s.player_lookup') }}
),
totals AS (
  SELECT
    r.player_lookup,
    COUNT(*) AS games_in_sample,
    SUM(r.fg_attempted) AS fga,
    SUM(r.rim_fg_attempted) AS rim_att,
    SUM(r.rim_fg_made) AS rim_made,
    SUM(r.mid_fg_attempted) AS mid_att,
    SUM(r.mid_fg_made) AS mid_made,
    SUM(r.three_attempted) AS three_att,
    SUM(r.three_made) AS three_made
  FROM recent AS r
  WHERE r.game_rank <= 10
  GROUP BY r.player_lookup
)
SELECT
  CAST({{ partition }} AS DATE) AS game_date,
  t.player_lookup,
  t.games_in_sample,
  ROUND(t.rim_att / NULLIF(1.0 * t.fga, 0), 4) AS rim_rate,
  ROUND(t.mid_att / NULLIF(1.0 * t.fga, 0), 4) AS mid_rate,
  ROUND(t.three_att / NULLIF(1.0 * t.fga, 0), 4) AS three_rate,
  ROUND(t.rim_made / NULLIF(1.0 * t.rim_att, 0), 4) AS rim_fg_pct,
  ROUND(t.mid_made / NULLIF(1.0 * t.mid_att, 0), 4) AS mid_fg_pct,
  ROUND(t.three_made / NULLIF(1.0 * t.three_att, 0), 4) AS three_fg_pct,
  CASE
    WHEN t.fga = 0 THEN NULL
    WHEN t.rim_att >= t.mid_att AND t.rim_att >= t.three_att THEN 'rim'
    WHEN t.three_att >= t.mid_att THEN 'three'
    ELSE 'mid_range'
  END AS primary_zone,
  CAST(CURRENT_TIMESTAMP AS TIMESTAMP) AS processed_at
FROM totals AS t
