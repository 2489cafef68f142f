"""Jobs on Ray: submission (checks, admission, the run folder, the token), the reconciler's
pass that follows them, their results, code packages, runtime environments and the
project's Ray dashboard."""
