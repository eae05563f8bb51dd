"""A small non-sports example project (building sensors): proof that pipectl is generic."""
