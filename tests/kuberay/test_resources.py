"""The builders' objects pass KubeRay's CRDs (made strict) and Kubernetes' own schemas, say what
each pool needs, and stay as reviewed: the golden files show any change as a diff.

Set FABRIC_UPDATE_GOLDEN=1 to rewrite the golden files after an intended change.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from kuberay import config, crds, resources
from kuberay.config import ClusterConfig
from kuberay.site import Site

ROOT = Path(__file__).parents[2]
CONFIGS = {
    path.stem: config.load(path) for path in sorted((ROOT / "cluster_configs").glob("*.yaml"))
}
GOLDEN = Path(__file__).parent / "golden"
KUBERNETES = "1.37.0"
SITE = Site()
USERS = ["alice", "bob_s"]
SERVE = {
    "applications": [
        {"name": "iris", "import_path": "serve_apps.classic:app", "route_prefix": "/iris"}
    ]
}


def _ray_objects(cluster: ClusterConfig) -> dict[str, dict[str, Any]]:
    job = {
        "submission_id": "fabric-vision-7-1-abc123",
        "entrypoint": "python -m jobs.xgboost --rounds 10",
        "runtime_env": {"env_vars": {"FABRIC_PROJECT": "vision"}},
        "resources": {"CPU": 1.0, "GPU": 0.0, "pool:cpu": 0.001},
        "metadata": {"fabric_project": "vision"},
        "timeout_seconds": 3600,
    }
    return {
        "RayCluster": resources.ray_cluster("vision", cluster, SITE, USERS),
        "RayJob on the project's cluster": resources.ray_job("vision", cluster, SITE, **job),
        "RayJob, ephemeral": resources.ray_job("vision", cluster, SITE, **job, users=USERS),
        "RayService": resources.ray_service("vision", cluster, SITE, SERVE, USERS),
    }


def _builtin_objects(cluster: ClusterConfig) -> list[dict[str, Any]]:
    return [
        *resources.foundation("vision", cluster, SITE, USERS),
        resources.token_secret("vision", cluster, SITE, "not-a-real-token"),
    ]


@pytest.mark.parametrize("name", CONFIGS)
def test_every_config_makes_ray_objects_the_crds_accept(name: str) -> None:
    for kind, manifest in _ray_objects(CONFIGS[name]).items():
        assert crds.errors(manifest) == [], kind


@pytest.mark.parametrize("name", CONFIGS)
def test_every_config_makes_builtin_objects_kubernetes_accepts(name: str) -> None:
    for manifest in _builtin_objects(CONFIGS[name]):
        kubernetes_validate.validate(manifest, KUBERNETES, strict=True)


def test_the_strict_check_catches_a_misspelt_field_and_a_bad_quantity() -> None:
    manifest = resources.ray_cluster("vision", CONFIGS["cpu-pool"], SITE, USERS)
    manifest["spec"]["workerGroupSpecs"][0]["maxReplica"] = 3
    manifest["spec"]["headGroupSpec"]["template"]["spec"]["containers"][0]["resources"]["limits"][
        "cpu"
    ] = "two"
    problems = crds.errors(manifest)
    assert any("'maxReplica' was unexpected" in p for p in problems), problems
    assert any(
        p.startswith("spec.headGroupSpec.template.spec.containers.0.resources.limits.cpu")
        for p in problems
    )


def _pod(group: dict[str, Any]) -> dict[str, Any]:
    return group["template"]["spec"]


def test_the_cluster_has_an_idle_head_token_auth_autoscaling_and_the_projects_folders() -> None:
    spec = resources.ray_cluster("vision", CONFIGS["cpu-pool"], SITE, USERS)["spec"]
    assert spec["headGroupSpec"]["rayStartParams"]["num-cpus"] == "0"
    assert spec["authOptions"] == {"mode": "token", "secretName": "ray-token"}
    assert spec["enableInTreeAutoscaling"] is True
    assert spec["autoscalerOptions"]["idleTimeoutSeconds"] == 300
    mounts = _pod(spec["headGroupSpec"])["containers"][0]["volumeMounts"]
    assert [m["mountPath"] for m in mounts] == ["/mnt/projects/vision", "/mnt/alice", "/mnt/bob_s"]
    claims = {
        v["persistentVolumeClaim"]["claimName"] for v in _pod(spec["headGroupSpec"])["volumes"]
    }
    assert claims == {
        c["metadata"]["name"] for c in resources.claims("vision", CONFIGS["cpu-pool"], SITE, USERS)
    }
    large = spec["workerGroupSpecs"][1]
    assert (
        large["groupName"],
        large["minReplicas"],
        large["maxReplicas"],
        large["idleTimeoutSeconds"],
    ) == ("cpu-large", 0, 4, 120)


def test_gpu_workers_ask_for_cards_or_mig_slices_on_their_pools_nodes() -> None:
    groups = {
        g["groupName"]: g
        for g in resources.ray_cluster("v", CONFIGS["gpu-pool"], SITE, [])["spec"][
            "workerGroupSpecs"
        ]
    }
    whole, mig = groups["a100x8"], groups["mig-1g"]
    assert _pod(whole)["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] == "8"
    assert "num-gpus" not in whole["rayStartParams"], "KubeRay maps whole cards by itself"
    assert _pod(mig)["containers"][0]["resources"]["limits"]["nvidia.com/mig-1g.10gb"] == "1"
    assert mig["rayStartParams"]["num-gpus"] == "1", "Ray must be told of MIG slices"
    assert _pod(whole)["nodeSelector"] == {"nvidia.com/gpu.product": "NVIDIA-A100-SXM4-80GB"}
    assert _pod(whole)["tolerations"] == [
        {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}
    ]


def test_npu_workers_get_the_ascend_limit_and_the_ray_resource_npu() -> None:
    group = resources.ray_cluster("v", CONFIGS["npu-pool"], SITE, [])["spec"]["workerGroupSpecs"][0]
    assert _pod(group)["containers"][0]["resources"]["limits"]["huawei.com/Ascend910"] == "8"
    # rayStartParams hold strings; `--resources` takes JSON quoted once more for the shell.
    offered = json.loads(json.loads(group["rayStartParams"]["resources"]))
    assert offered == {"NPU": 8, "pool:ascend": 1000}


def test_edge_workers_are_pinned_by_affinity_and_mount_nothing() -> None:
    cluster = CONFIGS["edge-pool"]
    group = resources.ray_cluster("v", cluster, SITE, USERS)["spec"]["workerGroupSpecs"][0]
    terms = _pod(group)["affinity"]["nodeAffinity"][
        "requiredDuringSchedulingIgnoredDuringExecution"
    ]
    assert terms["nodeSelectorTerms"][0]["matchExpressions"][1] == {
        "key": "topology.kubernetes.io/zone",
        "operator": "In",
        "values": ["edge-north", "edge-south"],
    }
    assert "volumes" not in _pod(group) and "volumeMounts" not in _pod(group)["containers"][0]
    assert resources.claims("v", cluster, SITE, USERS) == []


def test_only_the_fabric_server_reaches_the_head_from_outside() -> None:
    policy = resources.network_policy("vision", CONFIGS["cpu-pool"], SITE)
    inside, fabric = policy["spec"]["ingress"]
    assert inside == {"from": [{"podSelector": {}}]}, "the project's own pods talk freely"
    assert fabric["from"] == [
        {
            "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "fabric"}},
            "podSelector": {"matchLabels": {"app.kubernetes.io/name": "fabric-server"}},
        }
    ]
    assert {p["port"] for p in fabric["ports"]} == {8265, 8000}


def test_ray_jobs_point_at_the_projects_cluster_or_bring_their_own() -> None:
    objects = _ray_objects(CONFIGS["cpu-pool"])
    standing, ephemeral = objects["RayJob on the project's cluster"], objects["RayJob, ephemeral"]
    assert standing["spec"]["clusterSelector"] == {"ray.io/cluster": "vision"}
    assert "rayClusterSpec" not in standing["spec"]
    assert ephemeral["spec"]["shutdownAfterJobFinishes"] is True
    assert ephemeral["spec"]["ttlSecondsAfterFinished"] == 600
    assert yaml.safe_load(standing["spec"]["runtimeEnvYAML"]) == {
        "env_vars": {"FABRIC_PROJECT": "vision"}
    }
    assert json.loads(standing["spec"]["entrypointResources"]) == {"pool:cpu": 0.001}
    service = objects["RayService"]
    assert yaml.safe_load(service["spec"]["serveConfigV2"]) == SERVE


def test_usernames_that_are_not_kubernetes_names_get_distinct_safe_ones() -> None:
    names = {
        c["metadata"]["name"]
        for c in resources.claims("v", CONFIGS["cpu-pool"], SITE, ["a_b", "a-b", "a.b"])
    }
    assert len(names) == 4 and "user-a-b" in names, names


@pytest.mark.parametrize("name", CONFIGS)
def test_rendered_objects_match_the_golden_file(name: str) -> None:
    cluster = CONFIGS[name]
    objects = [*_builtin_objects(cluster), *_ray_objects(cluster).values()]
    rendered = yaml.safe_dump_all(objects, sort_keys=False)
    golden = GOLDEN / f"{name}.yaml"
    if os.environ.get("FABRIC_UPDATE_GOLDEN"):
        golden.write_text(rendered)
    assert golden.exists(), f"no golden file {golden.name}: run with FABRIC_UPDATE_GOLDEN=1"
    assert rendered == golden.read_text(), f"{name}: review the change, then FABRIC_UPDATE_GOLDEN=1"
