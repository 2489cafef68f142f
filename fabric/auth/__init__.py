"""Authentication primitives: password hashing, token secrets, identity from SSO."""
