"""Who may do what: users, projects and their members, roles, tokens, logins, pools, and the
audit trail of every change."""
