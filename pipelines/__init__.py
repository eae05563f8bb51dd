"""Example pipelines (transforms and sample data) of the projects in this repository."""
