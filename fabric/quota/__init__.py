"""Quota: a pure admission engine; the database-side admission lives in services."""
