"""Alembic environment and revisions; shipped in the package as ``registry.migrations``."""
