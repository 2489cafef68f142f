"""Services: the platform's logic. They take a session explicitly, know no HTTP, raise
`fabric.errors` types, and commit their own unit of work."""
