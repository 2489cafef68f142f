"""A thin client on the official `kubernetes` package: dict manifests in and out, by kind.

Every create and patch asks for strict field validation, so the API server refuses a field it
does not know instead of dropping it. Transient failures (429, 5xx, a connection that drops)
are retried a few times with backoff; a 404 reads as "absent", a 409 on create as "exists".
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast

import urllib3
from kubernetes import client as k8s
from kubernetes import config as k8s_config

RAY_GROUP, RAY_VERSION = "ray.io", "v1"
RAY_PLURALS = {"RayCluster": "rayclusters", "RayJob": "rayjobs", "RayService": "rayservices"}
TRANSIENT = {429, 500, 502, 503, 504}


class KubeError(Exception):
    """Kubernetes refused a request or could not be reached; the message says which and why."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class AlreadyExists(KubeError):
    pass


@dataclass(frozen=True)
class _Builtin:
    api: Callable[[k8s.ApiClient], Any]
    suffix: str
    namespaced: bool = True


_BUILTIN = {
    "Namespace": _Builtin(k8s.CoreV1Api, "namespace", namespaced=False),
    "Secret": _Builtin(k8s.CoreV1Api, "namespaced_secret"),
    "PersistentVolumeClaim": _Builtin(k8s.CoreV1Api, "namespaced_persistent_volume_claim"),
    "NetworkPolicy": _Builtin(k8s.NetworkingV1Api, "namespaced_network_policy"),
    "Pod": _Builtin(k8s.CoreV1Api, "namespaced_pod"),
}


def connect(kubeconfig: str | None = None) -> k8s.ApiClient:
    """In a pod, the pod's service account; elsewhere the kubeconfig (default ~/.kube/config)."""
    configuration = k8s.Configuration()
    try:
        if kubeconfig is None and k8s_config.incluster_config.SERVICE_HOST_ENV_NAME in os.environ:
            k8s_config.load_incluster_config(client_configuration=configuration)
        else:
            k8s_config.load_kube_config(config_file=kubeconfig, client_configuration=configuration)
    except (k8s_config.ConfigException, OSError) as exc:
        raise KubeError(f"no Kubernetes configuration: {exc}") from exc
    return k8s.ApiClient(configuration)


class KubeApi:
    def __init__(
        self,
        api_client: k8s.ApiClient,
        *,
        attempts: int = 4,
        backoff_seconds: float = 0.5,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._client = api_client
        self._custom = k8s.CustomObjectsApi(api_client)
        self._attempts = attempts
        self._backoff = backoff_seconds
        self._sleep = sleep

    def _call(self, what: str, call: Callable[[], Any]) -> Any:
        """Run `call`, retrying what may pass on its own; KubeError for everything else."""
        for attempt in range(1, self._attempts + 1):
            try:
                return call()
            except k8s.ApiException as exc:
                if exc.status not in TRANSIENT or attempt == self._attempts:
                    kind = AlreadyExists if exc.status == 409 else KubeError
                    raise kind(f"{what}: {_reason(exc)}", exc.status) from None
            except urllib3.exceptions.HTTPError as exc:
                if attempt == self._attempts:
                    raise KubeError(f"{what}: Kubernetes does not answer ({exc})") from None
            self._sleep(self._backoff * 2 ** (attempt - 1))
        raise AssertionError("unreachable")

    def _plain(self, result: Any) -> dict[str, Any]:
        """A typed API's model object as the dict a manifest is (camelCase keys)."""
        if isinstance(result, dict):
            return result
        return cast(dict[str, Any], self._client.sanitize_for_serialization(result))

    def _builtin(self, kind: str, verb: str) -> tuple[Callable[..., Any], _Builtin]:
        spec = _BUILTIN[kind]
        return getattr(spec.api(self._client), f"{verb}_{spec.suffix}"), spec

    def create(self, manifest: dict[str, Any]) -> dict[str, Any]:
        kind = manifest["kind"]
        namespace = manifest["metadata"].get("namespace")
        what = f"create {kind} {manifest['metadata']['name']}"
        if kind in RAY_PLURALS:
            return self._call(
                what,
                lambda: self._custom.create_namespaced_custom_object(
                    RAY_GROUP,
                    RAY_VERSION,
                    namespace,
                    RAY_PLURALS[kind],
                    manifest,
                    field_validation="Strict",
                ),
            )
        method, spec = self._builtin(kind, "create")
        args = (namespace, manifest) if spec.namespaced else (manifest,)
        return self._plain(self._call(what, lambda: method(*args, field_validation="Strict")))

    def get(self, kind: str, namespace: str | None, name: str) -> dict[str, Any] | None:
        """The object, or None when it does not exist."""
        what = f"read {kind} {name}"
        try:
            if kind in RAY_PLURALS:
                return self._call(
                    what,
                    lambda: self._custom.get_namespaced_custom_object(
                        RAY_GROUP,
                        RAY_VERSION,
                        _ray_namespace(kind, namespace),
                        RAY_PLURALS[kind],
                        name,
                    ),
                )
            method, spec = self._builtin(kind, "read")
            args = (name, namespace) if spec.namespaced else (name,)
            return self._plain(self._call(what, lambda: method(*args)))
        except KubeError as exc:
            if exc.status == 404:
                return None
            raise

    def patch(
        self, kind: str, namespace: str | None, name: str, body: dict[str, Any]
    ) -> dict[str, Any]:
        """A merge patch: the fields in `body` replace the object's, lists whole."""
        what = f"patch {kind} {name}"
        if kind in RAY_PLURALS:
            return self._call(
                what,
                lambda: self._custom.patch_namespaced_custom_object(
                    RAY_GROUP,
                    RAY_VERSION,
                    _ray_namespace(kind, namespace),
                    RAY_PLURALS[kind],
                    name,
                    body,
                    field_validation="Strict",
                ),
            )
        method, spec = self._builtin(kind, "patch")
        args = (name, namespace, body) if spec.namespaced else (name, body)
        return self._plain(self._call(what, lambda: method(*args, field_validation="Strict")))

    def delete(self, kind: str, namespace: str | None, name: str) -> bool:
        """Delete the object; False when it was already gone."""
        what = f"delete {kind} {name}"
        try:
            if kind in RAY_PLURALS:
                self._call(
                    what,
                    lambda: self._custom.delete_namespaced_custom_object(
                        RAY_GROUP,
                        RAY_VERSION,
                        _ray_namespace(kind, namespace),
                        RAY_PLURALS[kind],
                        name,
                    ),
                )
            else:
                method, spec = self._builtin(kind, "delete")
                args = (name, namespace) if spec.namespaced else (name,)
                self._call(what, lambda: method(*args))
        except KubeError as exc:
            if exc.status == 404:
                return False
            raise
        return True

    def list(
        self, kind: str, namespace: str | None, label_selector: str = ""
    ) -> list[dict[str, Any]]:
        what = f"list {kind}"
        if kind in RAY_PLURALS:
            found = self._call(
                what,
                lambda: self._custom.list_namespaced_custom_object(
                    RAY_GROUP,
                    RAY_VERSION,
                    _ray_namespace(kind, namespace),
                    RAY_PLURALS[kind],
                    label_selector=label_selector,
                ),
            )
            return list(found.get("items", []))
        method, spec = self._builtin(kind, "list")
        args = (namespace,) if spec.namespaced else ()
        found = self._plain(self._call(what, lambda: method(*args, label_selector=label_selector)))
        return list(found.get("items") or [])

    def ensure(self, manifest: dict[str, Any]) -> dict[str, Any]:
        """The object as stored: created now, or the one that already existed."""
        try:
            return self.create(manifest)
        except AlreadyExists:
            meta = manifest["metadata"]
            found = self.get(manifest["kind"], meta.get("namespace"), meta["name"])
            if found is None:  # deleted between the two calls: try once more
                return self.create(manifest)
            return found


def _ray_namespace(kind: str, namespace: str | None) -> str:
    """KubeRay's objects always live in a namespace: a call without one is a caller's bug."""
    if namespace is None:
        raise ValueError(f"a {kind} lives in a namespace; none was given")
    return namespace


def _reason(exc: k8s.ApiException) -> str:
    """Kubernetes' own message from a Status body, or the HTTP reason."""
    try:
        return json.loads(exc.body or "{}").get("message") or f"HTTP {exc.status} {exc.reason}"
    except ValueError:
        return f"HTTP {exc.status} {exc.reason}"
