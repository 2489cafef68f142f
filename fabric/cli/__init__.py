"""The `fabric` command line: a thin layer over `fabric.sdk` that prints tables or JSON."""
