"""The ingress of a model endpoint: HTTP in, a version chosen by weight, its replica called.

The Fabric server deploys one Serve application per endpoint with this module's `app_builder`
and `args` as `fabric.runtime.serve_contract.EndpointArgs` (the contract both sides import);
each version becomes a `ModelServer` deployment named after it, and this router (deployment
`router`) picks one per request in proportion to the weights, or the one that the header
`x-fabric-version` names (`3` or `churn@3`; versions of weight 0 too, which is how the
server mirrors traffic and calls a version by name). Requests arrive as plain Starlette
requests, without FastAPI, since on a small machine every millisecond of the ingress shows.

    POST {prefix}/predict  {"instances": [row, ...]}  ->  {"predictions": [...], "model", "version"}
    POST {prefix}/predict  {"instance": row}          ->  {"prediction": x, "model", "version"}
    GET  {prefix}/                                    ->  the endpoint and its versions

Every answer from a chosen version carries `x-fabric-model-version: churn@3`; errors are
`{"detail": ...}`: 400 for input to fix, 404 for an unknown version or path, 500 when the
model fails.
"""

from __future__ import annotations

import json
import random
from typing import Any

from pydantic import ValidationError
from ray import serve
from ray.serve.handle import DeploymentHandle
from starlette.requests import Request
from starlette.responses import Response

from fabric.runtime import model_files
from fabric.runtime.serve_contract import (
    ANSWERED_HEADER,
    IMPORT_PATH,
    ROUTER_DEPLOYMENT,
    VERSION_HEADER,
    EndpointArgs,
    VersionArgs,
)
from serve_apps.classic import ModelServer

PREDICT_PATHS = ("", "/", "/predict", "/predict/")


class Refused(Exception):
    """A request answered with an error: its status and what to fix."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status, self.detail = status, detail


def answer(status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> Response:
    return Response(
        json.dumps(body, allow_nan=False),
        status_code=status,
        headers=headers,
        media_type="application/json",
    )


def read_rows(body: bytes) -> tuple[list[Any], bool]:
    """The rows of a predict request, and whether it sent one `instance` rather than a list."""
    try:
        payload = json.loads(body)
    except ValueError as exc:
        raise Refused(400, f"the body is not JSON: {exc}") from exc
    if not isinstance(payload, dict):
        raise Refused(400, 'the body is a JSON object: {"instances": [row, ...]}')
    if ("instances" in payload) == ("instance" in payload):
        raise Refused(400, 'give either "instances": [row, ...] or "instance": row')
    if "instance" in payload:
        return [payload["instance"]], True
    rows = payload["instances"]
    if not isinstance(rows, list) or not rows:
        raise Refused(400, '"instances" is a list of one row or more')
    return rows, False


def sub_path(request: Request) -> str:
    """The path below the application's route prefix."""
    path, prefix = request.url.path, request.scope.get("root_path", "")
    return path[len(prefix) :] if prefix and path.startswith(prefix) else path


@serve.deployment(name=ROUTER_DEPLOYMENT)
class Router:
    """Chooses a version per request and calls its deployment through a handle."""

    def __init__(self, args: EndpointArgs, handles: dict[str, DeploymentHandle]) -> None:
        self.args, self.handles = args, handles
        self.weighted = [version for version in args.versions if version.weight > 0]
        self.weights = [version.weight for version in self.weighted]
        self.random = random.Random()

    async def __call__(self, request: Request) -> Response:
        path = sub_path(request)
        if path not in PREDICT_PATHS:
            return answer(404, {"detail": f"no such path {path}; POST {{prefix}}/predict"})
        if request.method == "GET" and path in ("", "/"):
            return answer(200, self.describe())
        if request.method != "POST":
            return answer(405, {"detail": f"{request.method} is not allowed here; POST"})
        try:
            version = self.choose(request.headers.get(VERSION_HEADER))
        except Refused as refused:
            return answer(refused.status, {"detail": refused.detail})
        headers = {ANSWERED_HEADER: version.label}
        try:
            rows, single = read_rows(await request.body())
            predictions = await self.predict(version, rows)
        except Refused as refused:
            return answer(refused.status, {"detail": refused.detail}, headers)
        body: dict[str, Any] = (
            {"prediction": predictions[0]} if single else {"predictions": predictions}
        )
        body |= {"model": version.model, "version": version.version}
        try:
            return answer(200, body, headers)
        except ValueError:
            detail = f"model {version.label} gave a prediction JSON cannot hold (NaN or infinity)"
            return answer(500, {"detail": detail}, headers)

    def choose(self, wanted: str | None) -> VersionArgs:
        """The version a header names, else one drawn in proportion to the weights."""
        if wanted is None:
            if not self.weighted:
                raise Refused(503, "no version of this endpoint takes traffic (all weights are 0)")
            return self.random.choices(self.weighted, self.weights)[0]
        found = [
            version
            for version in self.args.versions
            if wanted.strip() in (version.label, str(version.version))
        ]
        if len(found) == 1:
            return found[0]
        if found:
            named = " or ".join(version.label for version in found)
            raise Refused(400, f"version {wanted} is ambiguous: name {named}")
        labels = ", ".join(version.label for version in self.args.versions)
        raise Refused(404, f"this endpoint has no version {wanted}; it has {labels}")

    async def predict(self, version: VersionArgs, rows: list[Any]) -> list[Any]:
        try:
            return await self.handles[version.name].predict.remote(rows)
        except Exception as exc:
            # A replica's exception arrives wrapped (RayTaskError); `cause` is the original.
            cause = getattr(exc, "cause", None) or exc
            if isinstance(cause, model_files.ModelError):
                raise Refused(400, str(cause)) from exc
            raise Refused(500, f"model {version.label} failed: {cause}") from exc

    def describe(self) -> dict[str, Any]:
        return {
            "endpoint": self.args.endpoint,
            "versions": [
                {
                    "name": version.name,
                    "model": version.model,
                    "version": version.version,
                    "framework": version.framework,
                    "weight": version.weight,
                }
                for version in self.args.versions
            ],
        }


def app_builder(args: dict[str, Any]) -> serve.Application:
    """The endpoint's application: the router bound to one ModelServer per version."""
    try:
        endpoint = EndpointArgs.model_validate(args)
    except ValidationError as exc:
        raise ValueError(f"invalid args for {IMPORT_PATH}: {exc}") from exc
    handles = {
        version.name: ModelServer.options(name=version.name).bind(version)
        for version in endpoint.versions
    }
    return Router.bind(endpoint, handles)
