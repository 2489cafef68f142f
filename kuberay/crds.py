"""Checks a manifest against KubeRay's own CRD schemas (v1.7.0, copied unmodified in crds/).

The CRDs list each object's `properties` but never forbid others, and the API server drops
unknown fields without a word; the check adds `additionalProperties: false` wherever
properties are listed, so a misspelt field is an error here rather than a silent no-op there.
Not checked: CEL rules, list-map key uniqueness, and enums the operator checks at runtime.
"""

from __future__ import annotations

import copy
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import yaml

FOLDER = Path(__file__).parent / "crds"
KINDS = {"RayCluster": "rayclusters", "RayJob": "rayjobs", "RayService": "rayservices"}


def _strict(schema: Any) -> Any:
    """The schema with `additionalProperties: false` added wherever `properties` is listed."""
    if isinstance(schema, dict):
        found = {key: _strict(value) for key, value in schema.items()}
        if "properties" in found and "additionalProperties" not in found:
            found["additionalProperties"] = False
        return found
    if isinstance(schema, list):
        return [_strict(item) for item in schema]
    return schema


@cache
def schema(kind: str, version: str = "v1") -> dict[str, Any]:
    """The strict openAPIV3Schema of a ray.io kind (parsed once: the files are ~1 MB each)."""
    if kind not in KINDS:
        raise ValueError(f"not a KubeRay kind: {kind!r}; known: {', '.join(KINDS)}")
    path = FOLDER / f"ray.io_{KINDS[kind]}.yaml"
    crd = yaml.load(path.read_text(), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    for served in crd["spec"]["versions"]:
        if served["name"] == version:
            return _strict(copy.deepcopy(served["schema"]["openAPIV3Schema"]))
    raise ValueError(f"{path.name} has no version {version!r}")


def errors(manifest: dict[str, Any]) -> list[str]:
    """Every way the manifest breaks its CRD, each as `path.in.object: message`."""
    group, _, version = manifest.get("apiVersion", "").partition("/")
    if group != "ray.io":
        return [f"apiVersion: {manifest.get('apiVersion')!r} is not a ray.io version"]
    validator = jsonschema.Draft4Validator(schema(manifest.get("kind", ""), version))
    found = []
    for error in sorted(validator.iter_errors(manifest), key=lambda e: list(e.absolute_path)):
        where = ".".join(str(part) for part in error.absolute_path) or "(object)"
        found.append(f"{where}: {error.message}")
    return found
