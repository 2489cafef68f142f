"""Job templates: the built-in ones (the `jobs` package) and those a project registers."""
