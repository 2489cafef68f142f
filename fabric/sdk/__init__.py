"""The Python SDK: `Client` wraps the REST API and returns its response models; every refusal
raises `ApiError`. `Pipeline` builds a pipeline's spec in Python."""

from fabric.sdk.client import Client
from fabric.sdk.pipelines import Pipeline, Task
from fabric.sdk.transport import ApiError

__all__ = ["ApiError", "Client", "Pipeline", "Task"]
