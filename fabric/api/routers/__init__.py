"""One router per resource; each route resolves its dependencies and calls one service."""
