"""Stand-ins for what the fast tests do without: a compute backend without Ray."""
