"""An in-process Kubernetes API server for tests of the KubeRay backend.

The backend speaks to Kubernetes through the official (sync, urllib3) client. Rather than mock
that client call by call, tests point it at this emulator, so the client's own URL building,
serialisation and error decoding are exercised too. kmock's `KubernetesEmulator` keeps the objects
in memory and answers over real HTTP; it runs on asyncio, so it gets an event loop of its own in a
background thread while the test thread makes blocking calls.

On top of kmock, this module adds what a real API server does and kmock leaves out: the metadata
the server owns (uid, resourceVersion, generation, creationTimestamp), 201 on create, replace
(PUT), equality label selectors, Status bodies with the API server's reasons (AlreadyExists,
NotFound), cluster-scoped namespaces, a log of the requests, and injected failures.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import datetime
import http
import itertools
import json
import re
import threading
import uuid
from collections.abc import Callable, Coroutine, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

import aiohttp.web
import attrs
import kmock
from kubernetes import client

# Resources in kmock's notation, for the direct access methods of KubeEmulator.
NAMESPACES = "v1/namespaces"
PODS = "v1/pods"
SECRETS = "v1/secrets"
SERVICES = "v1/services"
PERSISTENT_VOLUME_CLAIMS = "v1/persistentvolumeclaims"
NETWORK_POLICIES = "networking.k8s.io/v1/networkpolicies"
RAY_CLUSTERS = "ray.io/v1/rayclusters"
RAY_JOBS = "ray.io/v1/rayjobs"
RAY_SERVICES = "ray.io/v1/rayservices"
RESOURCES = (
    NAMESPACES,
    PODS,
    SECRETS,
    SERVICES,
    PERSISTENT_VOLUME_CLAIMS,
    NETWORK_POLICIES,
    RAY_CLUSTERS,
    RAY_JOBS,
    RAY_SERVICES,
)

# kmock's URL parser takes /api/v1/namespaces/NAME for a namespaced URL with no resource in it,
# and fails on /api/v1/namespaces itself; such requests are described to kmock by hand.
_NAMESPACE_URL = re.compile(r"/api/v1/namespaces(?:/(?P<name>[^/]+))?")
_NAMESPACE_ACTIONS = {
    ("GET", False): kmock.action.LIST,
    ("POST", False): kmock.action.CREATE,
    ("GET", True): kmock.action.FETCH,
    ("PATCH", True): kmock.action.UPDATE,
    ("DELETE", True): kmock.action.DELETE,
}

# The API server's reasons where they differ from the HTTP phrase without spaces.
_REASONS = {409: "AlreadyExists", 422: "Invalid", 500: "InternalError", 504: "Timeout"}

_T = TypeVar("_T")


@dataclass(frozen=True)
class RecordedRequest:
    """One request as the emulator received it, so tests can assert the backend's calls."""

    method: str
    path: str
    params: dict[str, str]
    body: Any  # the parsed JSON body, None when there was none


@dataclass
class _Failure:
    """The next `times` requests that match answer `status` instead of reaching kmock."""

    method: str
    path: str | re.Pattern[str]
    status: int
    reason: str
    message: str
    times: int

    def matches(self, request: RecordedRequest) -> bool:
        if isinstance(self.path, re.Pattern):
            path_matches = self.path.fullmatch(request.path) is not None
        else:
            path_matches = self.path == request.path
        return path_matches and request.method == self.method


@attrs.define(kw_only=True)
class _ApiServer(kmock.KubernetesEmulator):
    """kmock's emulator with what the API server does beyond storing the bodies it is sent.

    Everything here runs in the emulator's event loop thread.
    """

    log: list[RecordedRequest] = attrs.field(factory=list, init=False)
    failures: list[_Failure] = attrs.field(factory=list, init=False)
    _versions: Iterator[int] = attrs.field(factory=lambda: itertools.count(1), init=False)

    def __attrs_post_init__(self) -> None:
        super().__attrs_post_init__()
        for resource in RESOURCES:
            # Declared resources list as empty, instead of 404, before their first object.
            self.resources[resource] = kmock.ResourceInfo()
        # kmock answers creates with 200, but the client decodes a created custom object only on
        # 201. The sub-priority puts this rule ahead of kmock's own fallback for creates.
        self.fallback[kmock.action.CREATE] ** 1 << 201 << self._serve_create
        # kmock has no replace at all: a PUT would answer 404.
        self.fallback[kmock.method.PUT] << self._serve_replace

    async def __call__(self, raw: aiohttp.web.BaseRequest) -> aiohttp.web.StreamResponse:
        body = await raw.read()
        record = RecordedRequest(raw.method, raw.path, dict(raw.query), _json(body))
        self.log.append(record)
        failure = next((failure for failure in self.failures if failure.matches(record)), None)
        if failure is not None:
            failure.times -= 1
            if not failure.times:
                self.failures.remove(failure)
            return _status_response(failure.status, failure.reason, failure.message)
        namespace_url = _NAMESPACE_URL.fullmatch(raw.path)
        if namespace_url is None:
            return await super().__call__(raw)
        name = namespace_url["name"]
        request = kmock.Request(
            method=raw.method,
            url=raw.url,
            params=dict(raw.query),
            data=_json(body),
            action=_NAMESPACE_ACTIONS.get((raw.method, name is not None)),
            resource=kmock.resource(NAMESPACES),
            name=name,
        )
        # kmock serves only the requests in its log: it filters them by identity.
        self._requests.append(request)
        return await self._handle(request)

    async def _handle(self, request: kmock.Request) -> aiohttp.web.StreamResponse:
        try:
            return await super()._handle(request)
        except kmock.KubernetesError as error:
            return _error_response(request, error)

    async def _serve_create(self, request: kmock.Request) -> dict[str, Any]:
        # kmock has stored the body as sent; stamp what the API server fills in.
        metadata = request.data.get("metadata", {})
        namespace = request.namespace or metadata.get("namespace")
        history = self.objects[request.resource, namespace, metadata.get("name")].history
        history[-1] = self.created(history[-1].raw, request.namespace)
        return history[-1].raw

    async def _serve_update(self, request: kmock.Request) -> dict[str, Any]:
        # kmock has merged the patch in as the last version; stamp that version.
        history = self.objects[request.resource, request.namespace, request.name].history
        history[-1] = self.revised(history[-2].raw, history[-1].raw)
        return history[-1].raw

    def _serve_replace(self, request: kmock.Request) -> dict[str, Any]:
        """Replace an object, refusing a stale resourceVersion as the API server does.

        The status is kept: the server ignores it outside the status subresource.
        """
        key = (request.resource, request.namespace, request.name)
        if key not in self.objects or self.objects[key].deleted:
            raise kmock.KubernetesObjectNotFoundError()
        current = self.objects[key].raw
        sent_version = request.data.get("metadata", {}).get("resourceVersion")
        if sent_version is not None and sent_version != current["metadata"]["resourceVersion"]:
            raise kmock.KubernetesError(
                status=409,
                reason="Conflict",
                message=f'Operation cannot be fulfilled on {_kind(request)} "{request.name}": '
                "the object has been modified; please apply your changes to the latest version "
                "and try again",
            )
        replacement = {key: value for key, value in request.data.items() if key != "status"}
        if "status" in current:
            replacement["status"] = current["status"]
        self.objects[key].history.append(self.revised(current, replacement))
        return self.objects[key].raw

    async def _serve_list(self, request: kmock.Request) -> dict[str, Any]:
        listing: dict[str, Any] = await super()._serve_list(request)
        wanted = _selector_labels(request.params.get("labelSelector", "")).items()
        listing["items"] = [item for item in listing["items"] if wanted <= _labels(item).items()]
        return listing

    def created(self, body: Mapping[str, Any], namespace: str | None) -> dict[str, Any]:
        """`body` with the metadata the API server fills in on create."""
        metadata = {
            **body.get("metadata", {}),
            "uid": str(uuid.uuid4()),
            "resourceVersion": str(next(self._versions)),
            "generation": 1,
            "creationTimestamp": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        }
        if namespace is not None:
            metadata["namespace"] = namespace
        return {**body, "metadata": metadata}

    def revised(self, previous: Mapping[str, Any], new: Mapping[str, Any]) -> dict[str, Any]:
        """`new` as the next version of `previous`: same identity, a new resourceVersion, and
        the generation counting changes of the spec, which is what controllers compare."""
        old_metadata = previous["metadata"]
        spec_changed = new.get("spec") != previous.get("spec")
        metadata = {
            **new.get("metadata", {}),
            **{
                field: old_metadata[field]
                for field in ("name", "namespace", "uid", "creationTimestamp")
                if field in old_metadata
            },
            "resourceVersion": str(next(self._versions)),
            "generation": old_metadata.get("generation", 1) + (1 if spec_changed else 0),
        }
        return {**new, "metadata": metadata}


class KubeEmulator:
    """A running emulator, as `kube_emulator()` yields it.

    The methods may be called from any thread: they run in the emulator's event loop, so they
    never interleave with a request that the backend makes at the same time.
    """

    def __init__(self, server: _ApiServer, url: str, loop: asyncio.AbstractEventLoop) -> None:
        self.url = url
        # kmock's own object, for its DSL (`objects` with pattern matching, reactions).
        self.kmock = server
        self.api_client = client.ApiClient(client.Configuration(host=url))
        self._loop = loop

    @property
    def requests(self) -> list[RecordedRequest]:
        """Every request received so far, oldest first."""
        return list(self.kmock.log)

    def requests_to(self, path_prefix: str) -> list[RecordedRequest]:
        """The requests received so far whose path starts with `path_prefix`."""
        return [request for request in self.requests if request.path.startswith(path_prefix)]

    def fail(
        self,
        method: str,
        path: str | re.Pattern[str],
        status: int,
        *,
        times: int = 1,
        reason: str | None = None,
        message: str = "failure injected by the test",
    ) -> None:
        """Answer the next `times` requests for `method` and `path` (exact, or a regex that
        must match the whole path) with `status` and a Status body, touching no object."""
        reason = reason or _REASONS.get(status) or http.HTTPStatus(status).phrase.replace(" ", "")
        failure = _Failure(method.upper(), path, status, reason, message, times)
        self._in_loop(self.kmock.failures.append, failure)

    def get(self, resource: str, namespace: str | None, name: str) -> dict[str, Any] | None:
        """A copy of the stored object, or None when there is none."""

        def get() -> dict[str, Any] | None:
            key = (kmock.resource(resource), namespace, name)
            if key not in self.kmock.objects or self.kmock.objects[key].deleted:
                return None
            return copy.deepcopy(self.kmock.objects[key].raw)

        return self._in_loop(get)

    def put(self, resource: str, body: Mapping[str, Any]) -> dict[str, Any]:
        """Store an object as if some controller had created it (the head pod, its service),
        replacing any object of that name. The namespace comes from `body`'s metadata."""

        def put() -> dict[str, Any]:
            created = self.kmock.created(body, None)
            metadata = created["metadata"]
            key = (kmock.resource(resource), metadata.get("namespace"), metadata["name"])
            self.kmock.objects[key] = created
            return copy.deepcopy(created)

        return self._in_loop(put)

    def set_status(
        self, resource: str, namespace: str | None, name: str, status: Mapping[str, Any]
    ) -> dict[str, Any]:
        """Replace the object's status, as its operator does (e.g. a RayCluster turning ready)."""

        def set_status() -> dict[str, Any]:
            stored = self.kmock.objects[kmock.resource(resource), namespace, name]
            revised = self.kmock.revised(stored.raw, {**stored.raw, "status": dict(status)})
            stored.history.append(revised)
            return copy.deepcopy(revised)

        return self._in_loop(set_status)

    def _in_loop(self, function: Callable[..., _T], *args: Any) -> _T:
        async def call() -> _T:
            return function(*args)

        return _wait(call(), self._loop)


@contextlib.contextmanager
def kube_emulator() -> Iterator[KubeEmulator]:
    """Run an emulator on a free loopback port, in a thread of its own, for the block."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="kube-emulator", daemon=True)
    thread.start()
    stack = contextlib.AsyncExitStack()
    try:
        server, url = _wait(_serve(stack), loop)
        emulator = KubeEmulator(server, url, loop)
        with emulator.api_client:
            yield emulator
    finally:
        _wait(stack.aclose(), loop)
        loop.call_soon_threadsafe(loop.stop)
        thread.join()
        loop.close()


async def _serve(stack: contextlib.AsyncExitStack) -> tuple[_ApiServer, str]:
    # aiohttp directly rather than kmock.Server: that one also patches aiohttp's resolver
    # process-wide (for kmock's own aiohttp client), which a urllib3 client does not need.
    server = await stack.enter_async_context(_ApiServer())
    runner = aiohttp.web.ServerRunner(aiohttp.web.Server(server))
    await runner.setup()
    stack.push_async_callback(runner.cleanup)
    await aiohttp.web.TCPSite(runner, "127.0.0.1", 0).start()
    host, port = runner.addresses[0]
    return server, f"http://{host}:{port}"


def _wait(coroutine: Coroutine[Any, Any, _T], loop: asyncio.AbstractEventLoop) -> _T:
    return asyncio.run_coroutine_threadsafe(coroutine, loop).result()


def _json(body: bytes) -> Any:
    return json.loads(body) if body else None


def _labels(item: Mapping[str, Any]) -> dict[str, str]:
    return item.get("metadata", {}).get("labels") or {}


def _selector_labels(selector: str) -> dict[str, str]:
    """The labels an equality selector (`a=b,c==d`) requires; other selectors are refused
    rather than silently matching everything."""
    labels = {}
    for term in filter(None, selector.split(",")):
        match = re.fullmatch(r"\s*([^=!\s]+)\s*==?\s*([^=!\s]*)\s*", term)
        if match is None:
            raise kmock.KubernetesError(
                status=400,
                reason="BadRequest",
                message=f"the emulator supports only equality label selectors: {selector!r}",
            )
        labels[match[1]] = match[2]
    return labels


def _kind(request: kmock.Request) -> str:
    """How the API server names a resource in messages: `rayclusters.ray.io`, `secrets`."""
    resource = request.resource
    return f"{resource.plural}.{resource.group}" if resource.group else resource.plural


def _error_response(request: kmock.Request, error: kmock.KubernetesError) -> aiohttp.web.Response:
    """kmock's errors as the API server words them: kmock says 'Object Already Exists'."""
    name = request.name or (request.data or {}).get("metadata", {}).get("name")
    if isinstance(error, kmock.KubernetesObjectNotFoundError):
        return _status_response(404, "NotFound", f'{_kind(request)} "{name}" not found')
    if error.status == 409 and request.action == kmock.action.CREATE:
        return _status_response(409, "AlreadyExists", f'{_kind(request)} "{name}" already exists')
    return _status_response(error.status, error.reason or "", error.message or "")


def _status_response(code: int, reason: str, message: str) -> aiohttp.web.Response:
    status = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    }
    return aiohttp.web.json_response(status, status=code)
