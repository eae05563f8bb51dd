"""SQL: Jinja environment with per-dialect template fallbacks, rendering, sqlglot checks."""
