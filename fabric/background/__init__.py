"""Work the server does in the background, outside any request: the reconciler's loops."""
