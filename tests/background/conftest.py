"""The background's tests run on the services' migrated databases, one of each backend."""

from tests.services.conftest import sessions

__all__ = ["sessions"]
