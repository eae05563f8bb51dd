"""The NBA player-props example pipeline: SQL transforms, the export and sample data."""
