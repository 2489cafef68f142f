"""The Kubernetes manifests of deploy/kubernetes, checked without a cluster.

Nothing here can apply them (no Kubernetes, no Docker on the development machine), so the
tests check what a cluster would reject (Kubernetes' own schemas, strictly: an unknown or
misspelt field fails) and the mistakes a schema cannot see: a variable the server does not
read, a password written inline, a probe on a route the app does not have, names that do not
point at each other.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from starlette.routing import Match

from fabric.api.app import create_app
from fabric.config import Settings
from kuberay import config as cluster_config

ROOT = Path(__file__).resolve().parents[2]
FOLDER = ROOT / "deploy" / "kubernetes"
# A template for `kubectl create secret`, never applied with the rest.
SECRET_EXAMPLE = "secret.example.yaml"
KUSTOMIZATION = "kustomization.yaml"
# The newest Kubernetes whose schemas kubernetes-validate 1.37.0 ships.
KUBERNETES_VERSION = "1.37.0"
# The settings of the KubeRay backend, which lands separately: checked by their own test.
KUBERAY_SETTINGS = frozenset(
    {"FABRIC_BACKEND", "FABRIC_CLUSTER_CONFIG", "FABRIC_KUBERAY_NAMESPACE_PREFIX"}
)
SECRET_NAME = "fabric-secrets"
SERVER_NAMESPACE = "fabric"
SERVER_LABEL = ("app.kubernetes.io/name", "fabric-server")

Manifest = dict[str, Any]


def load(name: str) -> list[Manifest]:
    """The documents of one file, empty ones (a trailing `---`) left out."""
    text = (FOLDER / name).read_text(encoding="utf-8")
    return [doc for doc in yaml.safe_load_all(text) if doc]


def manifest_files() -> list[str]:
    return sorted(path.name for path in FOLDER.glob("*.yaml"))


def applied() -> list[Manifest]:
    """What `kubectl apply -k` creates: the kustomization's resources, in its order."""
    (kustomization,) = load(KUSTOMIZATION)
    return [doc for name in kustomization["resources"] for doc in load(name)]


def one(kind: str) -> Manifest:
    (found,) = [doc for doc in applied() if doc["kind"] == kind]
    return found


def container() -> Manifest:
    (server,) = one("Deployment")["spec"]["template"]["spec"]["containers"]
    return server


def env() -> dict[str, Manifest]:
    return {item["name"]: item for item in container()["env"]}


def settings_env_names() -> set[str]:
    """The variables Settings reads: its env prefix and each field's name, upper-cased."""
    return {f"FABRIC_{field.upper()}" for field in Settings.model_fields}


def documents() -> list[tuple[str, Manifest]]:
    return [(name, doc) for name in manifest_files() if name != KUSTOMIZATION for doc in load(name)]


@pytest.mark.parametrize(
    ("name", "doc"),
    documents(),
    ids=[f"{name}:{doc['kind']}" for name, doc in documents()],
)
def test_manifest_is_valid_kubernetes(name: str, doc: Manifest) -> None:
    """Strict schemas catch misspelt and misplaced fields, which kubectl may only warn about."""
    try:
        kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)
    except kubernetes_validate.ValidationError as error:
        where = ".".join(str(part) for part in error.path)
        pytest.fail(f"{name} {doc['kind']}/{doc['metadata']['name']}: {where}: {error.message}")


def test_kustomization_lists_every_manifest() -> None:
    """A file left out of the kustomization is silently never applied."""
    (kustomization,) = load(KUSTOMIZATION)
    assert kustomization["apiVersion"] == "kustomize.config.k8s.io/v1beta1"
    assert kustomization["kind"] == "Kustomization"
    listed = kustomization["resources"]
    assert len(listed) == len(set(listed)), "a resource is listed twice"
    expected = set(manifest_files()) - {KUSTOMIZATION, SECRET_EXAMPLE}
    assert set(listed) == expected


def test_no_secret_is_applied() -> None:
    """Credentials come from a Secret created by hand, never from a file in the repository."""
    assert [doc for doc in applied() if doc["kind"] == "Secret"] == []


def test_server_variables_are_settings() -> None:
    """A misspelt FABRIC_ variable is ignored by Settings (extra="ignore"), never reported."""
    names = {name for name in env() if name.startswith("FABRIC_")} - KUBERAY_SETTINGS
    assert names, "the Deployment sets no FABRIC_ variable"
    assert names - settings_env_names() == set()


def test_kuberay_settings_are_settings() -> None:
    """The Deployment selects the KubeRay backend; Settings must read the variables it sets.

    Fails until the KubeRay backend's settings land in fabric/config.py.
    """
    assert KUBERAY_SETTINGS - set(env()) == set(), "the Deployment does not set them all"
    assert KUBERAY_SETTINGS - settings_env_names() == set()


def test_secrets_are_only_referenced() -> None:
    """Passwords and the database URL come from the Secret; none is written in the manifest."""
    (example,) = load(SECRET_EXAMPLE)
    assert example["metadata"]["name"] == SECRET_NAME
    variables = env()
    for name in ("FABRIC_DATABASE_URL", "FABRIC_ADMIN_PASSWORD"):
        assert "value" not in variables[name], f"{name} is written inline"
        reference = variables[name]["valueFrom"]["secretKeyRef"]
        assert reference["name"] == SECRET_NAME
        assert reference["key"] in example["stringData"], f"{name}: no such key in the Secret"
    sensitive = ("PASSWORD", "SECRET", "TOKEN", "DATABASE_URL")
    inline = [name for name, item in variables.items() if "value" in item]
    assert [name for name in inline if any(word in name for word in sensitive)] == []


def test_service_account_is_the_one_bound() -> None:
    """With another account the server runs, and every Kubernetes call it makes is refused."""
    pod = one("Deployment")["spec"]["template"]["spec"]
    account = one("ServiceAccount")["metadata"]
    binding = one("ClusterRoleBinding")
    assert pod["serviceAccountName"] == account["name"]
    assert {
        "kind": "ServiceAccount",
        "name": account["name"],
        "namespace": account["namespace"],
    } in (binding["subjects"])
    assert binding["roleRef"]["kind"] == "ClusterRole"
    assert binding["roleRef"]["name"] == one("ClusterRole")["metadata"]["name"]


@pytest.mark.parametrize(
    ("group", "resource", "verbs"),
    [
        ("ray.io", "rayclusters", {"create", "get", "list", "patch", "delete"}),
        ("ray.io", "rayjobs", {"create", "get", "list", "patch", "delete"}),
        ("ray.io", "rayservices", {"create", "get", "list", "patch", "delete"}),
        ("ray.io", "rayclusters/status", {"get"}),
        ("ray.io", "rayjobs/status", {"get"}),
        ("ray.io", "rayservices/status", {"get"}),
        ("", "namespaces", {"create", "get", "list", "patch", "delete"}),
        ("", "persistentvolumeclaims", {"create", "get", "list", "patch", "delete"}),
        ("", "secrets", {"create", "get", "list", "patch", "delete"}),
        ("networking.k8s.io", "networkpolicies", {"create", "get", "list", "patch", "delete"}),
        ("", "pods", {"get", "list", "watch"}),
        ("", "services", {"get", "list", "watch"}),
        ("", "events", {"get", "list", "watch"}),
    ],
)
def test_cluster_role_grants(group: str, resource: str, verbs: set[str]) -> None:
    """A resource under the wrong API group is valid YAML and grants nothing."""
    granted = {
        verb
        for rule in one("ClusterRole")["rules"]
        if group in rule["apiGroups"] and resource in rule["resources"]
        for verb in rule["verbs"]
    }
    assert verbs - granted == set()


def test_probes_are_routes_of_the_app() -> None:
    """A probe on a path the app does not serve answers 404 and the pod never becomes ready."""
    with tempfile.TemporaryDirectory() as home:
        # Builds the routes only: no lifespan runs, so no database, Ray or server starts.
        app = create_app(Settings(home=Path(home)))
    server = container()
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        path = server[probe]["httpGet"]["path"]
        scope = {"type": "http", "method": "GET", "path": path, "root_path": ""}
        matches = [route.matches(scope)[0] for route in app.router.routes]
        assert Match.FULL in matches, f"{probe}: the app has no GET {path}"


def test_probes_and_service_use_the_server_port() -> None:
    """The Service, the probes and FABRIC_PORT must all name the port the server binds."""
    server = container()
    variables = env()
    (port,) = server["ports"]
    assert variables["FABRIC_HOST"]["value"] == "0.0.0.0"
    assert int(variables["FABRIC_PORT"]["value"]) == port["containerPort"]
    (service_port,) = one("Service")["spec"]["ports"]
    assert service_port["targetPort"] in (port["name"], port["containerPort"])
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        assert server[probe]["httpGet"]["port"] in (port["name"], port["containerPort"])


def test_server_pods_are_the_ones_network_policies_admit() -> None:
    """Projects' NetworkPolicies admit pods by this label, from the namespace with this name."""
    deployment = one("Deployment")
    key, value = SERVER_LABEL
    assert deployment["metadata"]["namespace"] == SERVER_NAMESPACE
    assert deployment["spec"]["template"]["metadata"]["labels"][key] == value
    namespace = one("Namespace")["metadata"]
    assert namespace["name"] == SERVER_NAMESPACE
    assert namespace["labels"]["kubernetes.io/metadata.name"] == SERVER_NAMESPACE
    namespaced = [doc for doc in applied() if doc["kind"] not in ("Namespace", "ClusterRole")]
    for doc in namespaced:
        if doc["kind"] != "ClusterRoleBinding":
            assert doc["metadata"]["namespace"] == SERVER_NAMESPACE, doc["metadata"]["name"]
    server_namespace = env()["FABRIC_KUBERAY_SERVER_NAMESPACE"]["valueFrom"]["fieldRef"]
    assert server_namespace["fieldPath"] == "metadata.namespace"
    selector = one("Service")["spec"]["selector"]
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert selector.items() <= labels.items(), "the Service selects no server pod"
    assert deployment["spec"]["selector"]["matchLabels"].items() <= labels.items()


def test_service_links_are_off() -> None:
    """Service links put FABRIC_SERVER_* variables in the pods, inside Settings' prefix."""
    assert one("Deployment")["spec"]["template"]["spec"]["enableServiceLinks"] is False


def test_volumes_back_the_paths_the_server_reads() -> None:
    """FABRIC_HOME on the shared claim, FABRIC_CLUSTER_CONFIG a key of the mounted ConfigMap."""
    pod = one("Deployment")["spec"]["template"]["spec"]
    volumes = {volume["name"]: volume for volume in pod["volumes"]}
    mounts = {mount["mountPath"]: mount["name"] for mount in container()["volumeMounts"]}
    variables = env()

    home = volumes[mounts[variables["FABRIC_HOME"]["value"]]]
    claim = one("PersistentVolumeClaim")
    assert home["persistentVolumeClaim"]["claimName"] == claim["metadata"]["name"]
    assert claim["spec"]["accessModes"] == ["ReadWriteMany"]

    config = Path(variables["FABRIC_CLUSTER_CONFIG"]["value"])
    config_map = one("ConfigMap")
    assert (
        volumes[mounts[str(config.parent)]]["configMap"]["name"] == (config_map["metadata"]["name"])
    )
    shipped = cluster_config.parse(yaml.safe_load(config_map["data"][config.name]), "ConfigMap")
    assert shipped == cluster_config.load(ROOT / "cluster_configs" / "cpu-pool.yaml")

    assert volumes[mounts["/tmp"]]["emptyDir"] is not None
    assert container()["securityContext"]["readOnlyRootFilesystem"] is True
    assert pod["securityContext"]["runAsNonRoot"] is True
