"""The emulator honours the contract the KubeRay backend's tests rely on, with the real client."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

from tests.kuberay.kube_emulator import (
    PODS,
    RAY_CLUSTERS,
    SERVICES,
    KubeEmulator,
    RecordedRequest,
    kube_emulator,
)

NAMESPACE = "user-1"
CLUSTERS = f"/apis/ray.io/v1/namespaces/{NAMESPACE}/rayclusters"


@pytest.fixture
def emulator() -> Iterator[KubeEmulator]:
    with kube_emulator() as running:
        yield running


@pytest.fixture
def custom(emulator: KubeEmulator) -> client.CustomObjectsApi:
    return client.CustomObjectsApi(emulator.api_client)


@pytest.fixture
def core(emulator: KubeEmulator) -> client.CoreV1Api:
    return client.CoreV1Api(emulator.api_client)


def ray_cluster(name: str, labels: dict[str, str] | None = None) -> dict[str, object]:
    return {
        "apiVersion": "ray.io/v1",
        "kind": "RayCluster",
        "metadata": {"name": name, "labels": labels or {}},
        "spec": {"rayVersion": "2.40.0", "workerGroupSpecs": []},
    }


def create_cluster(custom: client.CustomObjectsApi, body: dict[str, object]) -> dict:
    return custom.create_namespaced_custom_object(
        "ray.io", "v1", NAMESPACE, "rayclusters", body, field_validation="Strict"
    )


def status_of(error: ApiException) -> dict:
    return json.loads(error.body)


def test_create_answers_201_with_the_stored_object(custom: client.CustomObjectsApi) -> None:
    created, code, _ = custom.create_namespaced_custom_object_with_http_info(
        "ray.io", "v1", NAMESPACE, "rayclusters", ray_cluster("c1"), field_validation="Strict"
    )

    assert code == 201
    metadata = created["metadata"]
    assert (metadata["name"], metadata["namespace"], metadata["generation"]) == ("c1", NAMESPACE, 1)
    assert metadata["uid"] and metadata["resourceVersion"] and metadata["creationTimestamp"]
    assert (
        custom.get_namespaced_custom_object("ray.io", "v1", NAMESPACE, "rayclusters", "c1")
        == created
    )


def test_creating_twice_answers_409_already_exists(custom: client.CustomObjectsApi) -> None:
    create_cluster(custom, ray_cluster("c1"))

    with pytest.raises(ApiException) as raised:
        create_cluster(custom, ray_cluster("c1"))

    assert raised.value.status == 409
    assert status_of(raised.value) == {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": 'rayclusters.ray.io "c1" already exists',
        "reason": "AlreadyExists",
        "code": 409,
    }


def test_missing_objects_answer_404_not_found(
    custom: client.CustomObjectsApi, core: client.CoreV1Api
) -> None:
    with pytest.raises(ApiException) as get_missing:
        custom.get_namespaced_custom_object("ray.io", "v1", NAMESPACE, "rayclusters", "nope")
    with pytest.raises(ApiException) as delete_missing:
        core.delete_namespaced_secret("nope", NAMESPACE)
    with pytest.raises(ApiException) as read_missing_namespace:
        core.read_namespace("nope")

    assert [
        (error.value.status, status_of(error.value)["reason"])
        for error in (get_missing, delete_missing, read_missing_namespace)
    ] == [(404, "NotFound")] * 3
    assert status_of(read_missing_namespace.value)["message"] == 'namespaces "nope" not found'


def test_merge_patch_changes_the_spec(custom: client.CustomObjectsApi) -> None:
    created = create_cluster(custom, ray_cluster("c1"))

    patched = custom.patch_namespaced_custom_object(
        "ray.io", "v1", NAMESPACE, "rayclusters", "c1", {"spec": {"suspend": True}}
    )

    assert patched["spec"] == {"rayVersion": "2.40.0", "workerGroupSpecs": [], "suspend": True}
    assert patched["metadata"]["generation"] == 2
    assert patched["metadata"]["uid"] == created["metadata"]["uid"]
    assert patched["metadata"]["resourceVersion"] != created["metadata"]["resourceVersion"]


def test_status_set_through_the_emulator_is_seen_by_get(
    emulator: KubeEmulator, custom: client.CustomObjectsApi
) -> None:
    create_cluster(custom, ray_cluster("c1"))

    emulator.set_status(
        RAY_CLUSTERS, NAMESPACE, "c1", {"state": "ready", "head": {"serviceName": "c1-head-svc"}}
    )

    fetched = custom.get_namespaced_custom_object("ray.io", "v1", NAMESPACE, "rayclusters", "c1")
    assert fetched["status"] == {"state": "ready", "head": {"serviceName": "c1-head-svc"}}
    assert fetched["metadata"]["generation"] == 1


def test_replace_keeps_the_status_and_refuses_a_stale_version(
    emulator: KubeEmulator, custom: client.CustomObjectsApi
) -> None:
    stale = create_cluster(custom, ray_cluster("c1"))
    emulator.set_status(RAY_CLUSTERS, NAMESPACE, "c1", {"state": "ready"})
    current = custom.get_namespaced_custom_object("ray.io", "v1", NAMESPACE, "rayclusters", "c1")

    replaced = custom.replace_namespaced_custom_object(
        "ray.io", "v1", NAMESPACE, "rayclusters", "c1", {**current, "spec": {}, "status": None}
    )
    with pytest.raises(ApiException) as raised:
        custom.replace_namespaced_custom_object(
            "ray.io", "v1", NAMESPACE, "rayclusters", "c1", stale
        )

    assert (replaced["spec"], replaced["status"]) == ({}, {"state": "ready"})
    assert (raised.value.status, status_of(raised.value)["reason"]) == (409, "Conflict")


def test_list_filters_by_label_selector(custom: client.CustomObjectsApi) -> None:
    create_cluster(custom, ray_cluster("mine", {"owner": "u1", "app": "ray"}))
    create_cluster(custom, ray_cluster("theirs", {"owner": "u2", "app": "ray"}))

    listed = custom.list_namespaced_custom_object(
        "ray.io", "v1", NAMESPACE, "rayclusters", label_selector="owner=u1,app=ray"
    )

    assert [item["metadata"]["name"] for item in listed["items"]] == ["mine"]


def test_pods_added_through_the_emulator_list_by_selector(
    emulator: KubeEmulator, core: client.CoreV1Api
) -> None:
    assert core.list_namespaced_pod(NAMESPACE, label_selector="ray.io/cluster=c1").items == []
    for name, node_type in (("c1-head", "head"), ("c1-worker", "worker")):
        emulator.put(
            PODS,
            {
                "metadata": {
                    "name": name,
                    "namespace": NAMESPACE,
                    "labels": {"ray.io/cluster": "c1", "ray.io/node-type": node_type},
                },
                "spec": {"containers": [{"name": "ray", "image": "rayproject/ray"}]},
                "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]},
            },
        )

    pods = core.list_namespaced_pod(
        NAMESPACE, label_selector="ray.io/cluster=c1,ray.io/node-type=head"
    ).items

    assert [pod.metadata.name for pod in pods] == ["c1-head"]
    assert pods[0].status.conditions[0].type == "Ready"


def test_injected_failure_answers_once_then_the_request_succeeds(
    emulator: KubeEmulator, custom: client.CustomObjectsApi
) -> None:
    emulator.fail("POST", re.compile(r".*/rayclusters"), 500)

    with pytest.raises(ApiException) as raised:
        create_cluster(custom, ray_cluster("c1"))
    assert emulator.get(RAY_CLUSTERS, NAMESPACE, "c1") is None
    created = create_cluster(custom, ray_cluster("c1"))

    assert (raised.value.status, status_of(raised.value)["reason"]) == (500, "InternalError")
    assert emulator.get(RAY_CLUSTERS, NAMESPACE, "c1") == created


def test_core_and_networking_objects_round_trip(
    emulator: KubeEmulator, core: client.CoreV1Api
) -> None:
    networking = client.NetworkingV1Api(emulator.api_client)
    emulator.put(SERVICES, {"metadata": {"name": "c1-head-svc", "namespace": NAMESPACE}})

    core.create_namespace({"metadata": {"name": NAMESPACE}})
    core.create_namespaced_secret(NAMESPACE, {"metadata": {"name": "s"}, "data": {}})
    core.create_namespaced_persistent_volume_claim(NAMESPACE, {"metadata": {"name": "pvc"}})
    policy = networking.create_namespaced_network_policy(
        NAMESPACE, {"metadata": {"name": "np"}, "spec": {"podSelector": {}}}
    )
    policy.spec.policy_types = ["Ingress"]
    networking.replace_namespaced_network_policy("np", NAMESPACE, policy)

    assert core.read_namespace(NAMESPACE).metadata.name == NAMESPACE
    assert core.read_namespaced_secret("s", NAMESPACE).metadata.namespace == NAMESPACE
    assert core.read_namespaced_persistent_volume_claim("pvc", NAMESPACE).metadata.uid
    assert networking.read_namespaced_network_policy("np", NAMESPACE).spec.policy_types == [
        "Ingress"
    ]
    assert core.read_namespaced_service("c1-head-svc", NAMESPACE).metadata.name == "c1-head-svc"
    networking.delete_namespaced_network_policy("np", NAMESPACE)
    core.delete_namespaced_persistent_volume_claim("pvc", NAMESPACE)
    core.delete_namespaced_secret("s", NAMESPACE)
    core.delete_namespace(NAMESPACE)
    assert emulator.get("v1/namespaces", None, NAMESPACE) is None


def test_requests_are_recorded_in_order(
    emulator: KubeEmulator, core: client.CoreV1Api, custom: client.CustomObjectsApi
) -> None:
    core.create_namespace({"metadata": {"name": NAMESPACE}})
    create_cluster(custom, ray_cluster("c1"))
    custom.delete_namespaced_custom_object("ray.io", "v1", NAMESPACE, "rayclusters", "c1")

    assert [(request.method, request.path) for request in emulator.requests] == [
        ("POST", "/api/v1/namespaces"),
        ("POST", CLUSTERS),
        ("DELETE", f"{CLUSTERS}/c1"),
    ]
    assert emulator.requests_to(CLUSTERS)[0] == RecordedRequest(
        "POST", CLUSTERS, {"fieldValidation": "Strict"}, ray_cluster("c1")
    )
