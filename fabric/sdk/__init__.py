"""The Python SDK: `Client` wraps the REST API; every refusal raises `ApiError`. `Pipeline`
builds a pipeline's spec in Python."""

from fabric.sdk.client import ApiError, Client
from fabric.sdk.pipelines import Pipeline, Task

__all__ = ["ApiError", "Client", "Pipeline", "Task"]
