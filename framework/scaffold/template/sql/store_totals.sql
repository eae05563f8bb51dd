SELECT o.day, o.store_id, SUM(o.amount) AS total
FROM {{ ref('orders_raw') }} o
WHERE o.day = {{ partition }}
  AND o.store_id IS NOT NULL
  AND {{ entity_filter('o.store_id') }}
GROUP BY o.day, o.store_id
