-- Per site and day, from its sensors' daily stats (sensor rows filtered on their site).
SELECT
  s.day,
  s.site_id,
  CAST(SUM(CASE WHEN s.readings > 0 THEN 1 ELSE 0 END) AS BIGINT) AS sensors_reporting,
  ROUND(AVG(s.temp_avg), 3) AS temp_avg,
  MAX(s.temp_max) AS temp_max,
  CAST(SUM(CASE WHEN s.battery_min < 2.6 THEN 1 ELSE 0 END) AS BIGINT) AS low_battery_sensors
FROM {{ ref('sensor_daily_stats') }} AS s
WHERE s.day = {{ partition }}
  AND {{ entity_filter('s.site_id') }}
GROUP BY s.day, s.site_id
