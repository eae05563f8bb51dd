SELECT o.day, o.customer_id, SUM(o.amount) AS total, COUNT(*) AS orders
FROM {{ ref('orders_raw') }} o
WHERE o.day = {{ partition }}
  AND {{ entity_filter('o.customer_id') }}
GROUP BY o.day, o.customer_id
