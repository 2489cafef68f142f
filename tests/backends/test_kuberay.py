"""The KubeRay backend's whole life against an in-process Kubernetes API (kmock) and, once its
cluster is "ready", the session's real Ray head standing in for the cluster's head service."""

from __future__ import annotations

import base64
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from pydantic import ValidationError

from fabric.backends.base import (
    BackendRefused,
    BackendUnavailable,
    ClusterStarting,
    Feature,
    JobSpec,
    JobStatus,
)
from fabric.backends.choice import make_backend
from fabric.backends.kuberay import KubeRayBackend
from fabric.backends.local_head import LocalRayHead
from fabric.backends.ray_jobs import RayJobsApi
from fabric.config import Settings
from kuberay import config, crds
from kuberay.client import KubeApi
from kuberay.config import ConfigError
from kuberay.site import Site
from tests.kuberay.kube_emulator import NAMESPACES, PODS, RAY_CLUSTERS, KubeEmulator, kube_emulator

CONFIG = config.load(Path(__file__).parents[2] / "cluster_configs" / "cpu-pool.yaml")
NAMESPACE = "fabric-vision"
STORAGE = Path("/srv/fabric/storage")
HEAD_POD = {
    "apiVersion": "v1",
    "kind": "Pod",
    "metadata": {
        "name": "vision-head-x7k2p",
        "namespace": NAMESPACE,
        "labels": {"ray.io/cluster": "vision", "ray.io/node-type": "head"},
    },
    "spec": {"containers": [{"name": "ray-head", "image": "rayproject/ray:2.60.0-py311"}]},
    "status": {
        "phase": "Pending",
        "conditions": [
            {
                "type": "PodScheduled",
                "status": "False",
                "reason": "Unschedulable",
                "message": "0/3 nodes are available: 3 Insufficient cpu.",
            }
        ],
    },
}


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Heads:
    """Stands in for the cluster's head service: records where the backend would connect and
    with which token, and connects to the session's real Ray head instead."""

    def __init__(self, head: LocalRayHead) -> None:
        self.head = head
        self.asked: list[tuple[str, dict[str, str]]] = []
        self.submitted: list[JobSpec] = []
        self.ran: list[str] = []
        self.serve_configs: list[dict[str, Any]] = []

    def __call__(self, url: str, headers: dict[str, str]) -> RayJobsApi:
        self.asked.append((url, headers))
        heads = self

        class Recording(RayJobsApi):
            def submit(self, spec: JobSpec) -> str:
                heads.submitted.append(spec)
                if any(name.startswith("pool:") for name in spec.custom_resources):
                    # The session's head has no pool's nodes: Ray would hold it PENDING forever.
                    return spec.submission_id
                heads.ran.append(spec.submission_id)
                return super().submit(spec)

            def apply_serve(self, config: dict[str, Any]) -> None:
                """Recorded only: the session's head serves other tests' applications."""
                heads.serve_configs.append(config)

            def busy(self) -> bool:
                """The session's head is shared: only this test's jobs are the cluster's."""
                return any(not self.state(s).status.terminal for s in heads.ran)

        return Recording(self.head.dashboard_url, self.head.auth_headers())


@pytest.fixture
def emulator() -> Iterator[KubeEmulator]:
    with kube_emulator() as running:
        yield running


@pytest.fixture(scope="module")
def head(ray_settings: dict[str, object]) -> LocalRayHead:
    return LocalRayHead(Settings(home=Path(str(ray_settings["ray_folder"])), **ray_settings))


def _backend(
    emulator: KubeEmulator, heads: Heads, clock: Clock, members: list[str]
) -> KubeRayBackend:
    return KubeRayBackend(
        KubeApi(emulator.api_client, sleep=lambda _: None),
        CONFIG,
        Site(),
        lambda project: members,
        STORAGE,
        ready_timeout_seconds=60,
        idle_seconds=600,
        jobs_api=heads,
        clock=clock,
    )


def _job(entrypoint: str, **fields: Any) -> JobSpec:
    return JobSpec(
        submission_id=f"fabric-vision-{uuid.uuid4().hex[:8]}", entrypoint=entrypoint, **fields
    )


def _wait_until_ended(backend: KubeRayBackend, submission: str) -> JobStatus:
    deadline = time.monotonic() + 120
    while not (status := backend.job_state("vision", submission).status).terminal:
        assert time.monotonic() < deadline, f"job {submission} did not end"
        time.sleep(0.2)
    return status


def _created(emulator: KubeEmulator) -> list[dict[str, Any]]:
    return [r.body for r in emulator.requests if r.method == "POST"]


def test_a_cluster_is_brought_up_waited_for_used_updated_and_released(
    emulator: KubeEmulator, head: LocalRayHead
) -> None:
    clock, heads = Clock(), Heads(head)
    backend = _backend(emulator, heads, clock, ["alice"])

    with pytest.raises(ClusterStarting, match="is starting: no head pod yet"):
        backend.submit_job("vision", _job("echo hello"))
    created = _created(emulator)
    assert [(m["kind"], m["metadata"]["name"]) for m in created] == [
        ("Namespace", NAMESPACE),
        ("PersistentVolumeClaim", "project-vision"),
        ("PersistentVolumeClaim", "user-alice"),
        ("NetworkPolicy", "ray-head-ingress"),
        ("Secret", "ray-token"),
        ("RayCluster", "vision"),
    ]
    posts = [r for r in emulator.requests if r.method == "POST"]
    assert all(r.params.get("fieldValidation") == "Strict" for r in posts)
    for manifest in created:
        if manifest["kind"] == "RayCluster":
            assert crds.errors(manifest) == []
        else:
            kubernetes_validate.validate(manifest, "1.37.0", strict=True)

    # The operator made a head pod that cannot be scheduled: the wait says why.
    emulator.put(PODS, HEAD_POD)
    with pytest.raises(ClusterStarting, match="Pending; PodScheduled: Unschedulable 0/3 nodes"):
        backend.submit_job("vision", _job("echo hello"))
    assert len(_created(emulator)) == 6, "nothing is created twice"
    clock.now += 61
    with pytest.raises(
        BackendUnavailable, match="not ready after 60 s: head pod vision-head-x7k2p"
    ):
        backend.submit_job("vision", _job("echo hello"))

    # Ready: jobs go to the head service, with the token Fabric keeps in the project's Secret.
    emulator.set_status(
        RAY_CLUSTERS,
        NAMESPACE,
        "vision",
        {"state": "ready", "head": {"serviceName": "vision-head-svc"}},
    )
    submission = backend.submit_job("vision", _job("echo hello from the cluster"))
    secret = emulator.get("v1/secrets", NAMESPACE, "ray-token")
    token = base64.b64decode(secret["data"]["auth_token"]).decode()
    assert heads.asked == [
        ("http://vision-head-svc.fabric-vision.svc:8265", {"Authorization": f"Bearer {token}"})
    ]
    assert len(token) >= 32
    assert _wait_until_ended(backend, submission) is JobStatus.SUCCEEDED
    assert "hello from the cluster" in backend.job_logs("vision", submission)

    # A job for a pool goes to that pool's workers; a pool the config lacks is refused.
    with pytest.raises(
        BackendRefused, match="pool 'a100' has no worker group in cluster config 'cpu-pool'"
    ):
        backend.submit_job("vision", _job("true", pool="a100"))
    env = {
        "FABRIC_URL": "http://127.0.0.1:8080",
        "FABRIC_PROJECT_DIR": f"{STORAGE}/projects/vision",
        "FABRIC_RUN_DIR": f"{STORAGE}/projects/vision/runs/job-7",
        "FABRIC_USER_DIR": f"{STORAGE}/users/alice",
        "OTHER": f"{STORAGE}/elsewhere",
    }
    backend.submit_job(
        "vision",
        _job(
            "true",
            pool="cpu",
            custom_resources={"x": 1.0},
            runtime_env={"env_vars": env},
            cwd=env["FABRIC_RUN_DIR"],
        ),
    )
    sent = heads.submitted[-1]
    assert sent.custom_resources == {"x": 1.0, "pool:cpu": 0.001}
    # The job sees the server's folders where the pods mount them, and the server's Service.
    assert sent.runtime_env["env_vars"] == {
        "FABRIC_URL": "http://fabric-server.fabric.svc:8080",
        "FABRIC_PROJECT_DIR": "/mnt/projects/vision",
        "FABRIC_RUN_DIR": "/mnt/projects/vision/runs/job-7",
        "FABRIC_USER_DIR": "/mnt/alice",
        "OTHER": f"{STORAGE}/elsewhere",
    }
    assert sent.cwd == "/mnt/projects/vision/runs/job-7"
    slow = backend.submit_job("vision", _job("sleep 30"))

    # A new member: a new server's backend adds their volume and updates the cluster in place,
    # leaving the worker groups at the size the autoscaler gave them.
    scaled = emulator.get(RAY_CLUSTERS, NAMESPACE, "vision")
    scaled["spec"]["workerGroupSpecs"][0]["replicas"] = 7
    emulator.put(RAY_CLUSTERS, scaled)
    later = _backend(emulator, heads, clock, ["alice", "bob"])
    before = len(emulator.requests)
    later.cluster("vision")
    changes = [
        (r.method, r.path) for r in emulator.requests[before:] if r.method in ("POST", "PATCH")
    ]
    assert ("PATCH", f"/apis/ray.io/v1/namespaces/{NAMESPACE}/rayclusters/vision") in changes
    assert ("POST", f"/apis/ray.io/v1/namespaces/{NAMESPACE}/rayclusters") not in changes
    assert emulator.get("v1/persistentvolumeclaims", NAMESPACE, "user-bob") is not None
    cluster = emulator.get(RAY_CLUSTERS, NAMESPACE, "vision")
    mounts = cluster["spec"]["headGroupSpec"]["template"]["spec"]["containers"][0]["volumeMounts"]
    assert "/mnt/bob" in {m["mountPath"] for m in mounts}
    assert [g["replicas"] for g in cluster["spec"]["workerGroupSpecs"]] == [7, 0]
    assert cluster["status"]["state"] == "ready", "the operator's status stays"

    # Warm workers on demand: a group's minimum goes up within its bounds, and nothing else.
    later.scale("vision", "cpu-large", 2)
    groups = emulator.get(RAY_CLUSTERS, NAMESPACE, "vision")["spec"]["workerGroupSpecs"]
    assert [(g["minReplicas"], g["replicas"]) for g in groups] == [(0, 7), (2, 2)]
    with pytest.raises(BackendRefused, match="scales between 0 and 4, not to 5"):
        later.scale("vision", "cpu-large", 5)
    with pytest.raises(BackendRefused, match="its groups are: cpu-small, cpu-large"):
        later.scale("vision", "gpu", 1)

    # Idle for long with nothing running: the cluster goes, its volumes and token stay.
    clock.now += 601
    assert later.release_idle() == [], "a job still runs"
    assert later.stop_job("vision", slow)
    assert _wait_until_ended(later, slow) is JobStatus.STOPPED
    clock.now += 601
    assert later.release_idle() == ["vision"]
    assert emulator.get(RAY_CLUSTERS, NAMESPACE, "vision") is None
    assert emulator.get("v1/persistentvolumeclaims", NAMESPACE, "user-bob") is not None
    with pytest.raises(BackendUnavailable, match="has no Ray cluster now"):
        later.job_state("vision", submission)

    # Deleting the project deletes its namespace, and nothing else.
    later.release("vision")
    assert emulator.get(NAMESPACES, None, NAMESPACE) is None


def test_a_restarted_server_releases_the_clusters_an_earlier_one_made(
    emulator: KubeEmulator, head: LocalRayHead
) -> None:
    clock, heads = Clock(), Heads(head)
    earlier = _backend(emulator, heads, clock, ["alice"])
    with pytest.raises(ClusterStarting):
        earlier.cluster("vision")
    emulator.set_status(RAY_CLUSTERS, NAMESPACE, "vision", {"state": "ready"})

    restarted = _backend(emulator, heads, clock, ["alice"])
    assert restarted.release_idle() == [], "used as of the restart"
    clock.now += 601
    assert restarted.release_idle() == ["vision"]
    assert emulator.get(RAY_CLUSTERS, NAMESPACE, "vision") is None
    clock.now += 601
    assert restarted.release_idle() == [], "a project without a cluster is let go"


def test_endpoints_are_served_by_the_projects_cluster_with_its_paths(
    emulator: KubeEmulator, head: LocalRayHead
) -> None:
    backend = _backend(emulator, Heads(head), Clock(), ["alice"])
    with pytest.raises(ClusterStarting):
        backend.serve_address("vision")
    emulator.set_status(
        RAY_CLUSTERS, NAMESPACE, "vision", {"state": "ready", "head": {"serviceName": "v-svc"}}
    )
    artifact = f"{STORAGE}/projects/vision/models/churn/3/model.joblib"
    app = {"name": "vision.churn", "args": {"versions": [{"uri": artifact, "weight": 1}]}}
    backend.apply_serve_config("vision", [app])
    [config] = backend._jobs_api.serve_configs  # type: ignore[attr-defined]
    assert config["http_options"] == {"host": "0.0.0.0", "port": 8000}
    assert config["applications"][0]["args"]["versions"] == [
        {"uri": "/mnt/projects/vision/models/churn/3/model.joblib", "weight": 1}
    ]
    assert backend.serve_address("vision") == "http://v-svc.fabric-vision.svc:8000"


def test_transient_failures_are_retried_and_existing_objects_reused(
    emulator: KubeEmulator, head: LocalRayHead
) -> None:
    emulator.put(
        NAMESPACES, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}}
    )
    emulator.fail("POST", f"/api/v1/namespaces/{NAMESPACE}/persistentvolumeclaims", 503, times=2)
    backend = _backend(emulator, Heads(head), Clock(), [])
    with pytest.raises(ClusterStarting):
        backend.cluster("vision")
    claims = [
        r for r in emulator.requests_to(f"/api/v1/namespaces/{NAMESPACE}/persistentvolumeclaims")
    ]
    assert [r.method for r in claims] == ["POST", "POST", "POST"], "two 503s, then created"
    namespace_calls = [
        (r.method, r.path)
        for r in emulator.requests_to("/api/v1/namespaces")
        if r.path.count("/") <= 4
    ]
    assert ("GET", f"/api/v1/namespaces/{NAMESPACE}") in namespace_calls, (
        "409 read the existing one"
    )
    assert emulator.get(RAY_CLUSTERS, NAMESPACE, "vision") is not None

    # A namespace Fabric did not make is never deleted.
    backend.release("vision")
    assert emulator.get(NAMESPACES, None, NAMESPACE) is not None


def test_a_refusal_is_reported_with_kubernetes_own_message(
    emulator: KubeEmulator, head: LocalRayHead
) -> None:
    emulator.fail(
        "POST",
        "/api/v1/namespaces",
        403,
        message='namespaces is forbidden: User "fabric" cannot create',
    )
    backend = _backend(emulator, Heads(head), Clock(), [])
    assert backend.version() == "2.60.0", "Kubernetes answers: the server is ready"
    with pytest.raises(
        BackendUnavailable,
        match='create Namespace fabric-vision: namespaces is forbidden: User "fabric"',
    ):
        backend.submit_job("vision", _job("true"))
    assert len([r for r in emulator.requests if r.method == "POST"]) == 1, "a 403 is not retried"
    emulator.fail("GET", "/api/v1/namespaces/fabric", 401, message="Unauthorized", times=4)
    with pytest.raises(BackendUnavailable, match="read Namespace fabric: Unauthorized"):
        backend.version()


def test_the_server_builds_the_kuberay_backend_from_its_settings(
    emulator: KubeEmulator, tmp_path: Path
) -> None:
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "test", "cluster": {"server": emulator.url}}],
                "users": [{"name": "fabric", "user": {"token": "kube-token"}}],
                "contexts": [{"name": "test", "context": {"cluster": "test", "user": "fabric"}}],
                "current-context": "test",
            }
        )
    )
    gpu = Path(__file__).parents[2] / "cluster_configs" / "gpu-pool.yaml"
    settings = Settings(home=tmp_path, backend="kuberay", cluster_config=gpu, kubeconfig=kubeconfig)
    backend = make_backend(settings, lambda project: [])
    assert isinstance(backend, KubeRayBackend)
    assert Feature.GPU in backend.features and Feature.NPU not in backend.features
    # The nodes a job may land on, from the config: no cluster needs to be up to know them.
    assert backend.node_sizes("vision", "a100") == [
        {"cpu": 64.0, "memory": 512.0, "gpu": 8.0},
        {"cpu": 8.0, "memory": 64.0, "gpu": 1.0},
    ]
    assert len(backend.node_sizes("vision", None)) == len(backend.config.worker_groups)
    assert backend.node_sizes("vision", "nowhere") == []
    with pytest.raises(ClusterStarting):
        backend.cluster("vision")
    assert emulator.get(RAY_CLUSTERS, NAMESPACE, "vision")["metadata"]["labels"] == {
        "app.kubernetes.io/managed-by": "fabric",
        "fabric.ai/project": "vision",
        "fabric.ai/cluster-config": "gpu-pool",
    }

    with pytest.raises(ValidationError, match="FABRIC_BACKEND=kuberay needs FABRIC_CLUSTER_CONFIG"):
        Settings(home=tmp_path, backend="kuberay")
    broken = tmp_path / "broken.yaml"
    broken.write_text(gpu.read_text().replace("pool: t4", "pool: t5"))
    with pytest.raises(ConfigError, match=r"worker_groups\[3\].pool: unknown pool 't5'"):
        make_backend(settings.model_copy(update={"cluster_config": broken}), lambda p: [])
