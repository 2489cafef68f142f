"""Online endpoints on Ray Serve: specs, keys, the project's Serve config built from the
database, and the reconciler's pass that keeps Serve in step."""
