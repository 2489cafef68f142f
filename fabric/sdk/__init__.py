"""The Python SDK: `Client` wraps the REST API; every refusal raises `ApiError`."""

from fabric.sdk.client import ApiError, Client

__all__ = ["ApiError", "Client"]
