"""Cluster configs: the compute a platform admin describes in YAML, checked before any use.

A config names node pools (where pods may land: node selectors, tolerations, affinity, the
accelerator the nodes carry) and worker groups (Ray worker pods placed on a pool, with their
size and replica bounds). Pools are the control plane's pools: a job asking for pool `a100`
runs on the worker groups of pool `a100`.

Unknown keys are errors, so a typo surfaces instead of silently doing nothing.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

# Kubernetes' quantity grammar (the CRDs' own pattern): 2, 0.5, 500m, 8Gi, 1e3.
QUANTITY = re.compile(
    r"^(\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))"
    r"(([KMGTPE]i)|[numkMGTPE]|([eE](\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))))?$"
)
DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,38}[a-z0-9])?$")
GPU_RESOURCE = "nvidia.com/gpu"
NPU_RESOURCE = "huawei.com/Ascend910"


def _quantity(value: Any) -> str:
    """A positive Kubernetes quantity, always as a string (YAML may give 2 or 0.5)."""
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise ValueError(f"{value!r} is not a quantity; use e.g. 2, 500m or 8Gi")
    text = str(value)
    if not QUANTITY.match(text) or text.startswith("-"):
        raise ValueError(f"{text!r} is not a quantity; use e.g. 2, 500m or 8Gi")
    return text


Quantity = Annotated[str, Field(description="a Kubernetes quantity: 2, 500m, 8Gi")]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Toleration(_Strict):
    key: str | None = None
    operator: Literal["Exists", "Equal"] = "Equal"
    value: str | None = None
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute"] | None = None


class NodeRequirement(_Strict):
    """One term of a required node affinity: the node's label `key` must satisfy `operator`."""

    key: str
    operator: Literal["In", "NotIn", "Exists", "DoesNotExist"] = "In"
    values: list[str] = Field(default_factory=list)


class Accelerator(_Strict):
    """What a pool's nodes carry. NVIDIA cards may be cut into MIG slices of one profile."""

    vendor: Literal["nvidia", "ascend"]
    type: str = Field(min_length=1, description="card type, e.g. A100, T4, Ascend910B")
    mig_profile: str | None = Field(default=None, pattern=r"^\d+g\.\d+gb$")

    @property
    def resource(self) -> str:
        """The pod resource a worker asks for: whole cards, or one MIG profile's slices."""
        if self.vendor == "ascend":
            return NPU_RESOURCE
        return f"nvidia.com/mig-{self.mig_profile}" if self.mig_profile else GPU_RESOURCE


class Pool(_Strict):
    node_selector: dict[str, str] = Field(default_factory=dict)
    tolerations: list[Toleration] = Field(default_factory=list)
    node_affinity: list[NodeRequirement] = Field(default_factory=list)
    accelerator: Accelerator | None = None


class Size(_Strict):
    cpu: Quantity
    memory: Quantity

    _cpu = field_validator("cpu", "memory", mode="before")(_quantity)


class Head(Size):
    pool: str | None = None
    image: str | None = None


class WorkerGroup(Size):
    name: str = Field(pattern=DNS_LABEL.pattern)
    pool: str
    image: str | None = None
    min_replicas: int = Field(default=0, ge=0)
    max_replicas: int = Field(ge=1)
    gpu: int = Field(default=0, ge=0, description="cards (or MIG slices) per worker pod")
    npu: int = Field(default=0, ge=0, description="Ascend NPUs per worker pod")
    idle_timeout_seconds: int | None = Field(default=None, gt=0)

    def offers(self) -> dict[str, float]:
        """What one worker pod offers Ray, in the platform's units (memory in GiB)."""
        # Here, not at the top: the kubernetes package costs every `fabric` command 0.2 s.
        from kubernetes.utils import parse_quantity

        sizes = {
            "cpu": float(parse_quantity(self.cpu)),
            "memory": float(parse_quantity(self.memory)) / 2**30,
            "gpu": float(self.gpu),
            "npu": float(self.npu),
        }
        return {name: amount for name, amount in sizes.items() if amount}


class Autoscaling(_Strict):
    idle_timeout_seconds: int = Field(default=300, gt=0)
    upscaling_mode: Literal["Default", "Aggressive", "Conservative"] = "Default"


class Storage(_Strict):
    """Where `/mnt/USER` and `/mnt/projects/PROJECT` come from; `shared: false` mounts none."""

    shared: bool = True
    storage_class: str | None = None
    access_mode: Literal["ReadWriteMany", "ReadWriteOnce"] = "ReadWriteMany"
    user_size: Quantity = "10Gi"
    project_size: Quantity = "100Gi"

    _sizes = field_validator("user_size", "project_size", mode="before")(_quantity)


class ClusterConfig(_Strict):
    name: str = Field(pattern=DNS_LABEL.pattern)
    description: str = ""
    backend: Literal["local", "kuberay"] = "kuberay"
    ray_version: str = Field(default="2.60.0", pattern=r"^\d+\.\d+\.\d+$")
    image: str | None = None
    head: Head
    pools: dict[str, Pool]
    worker_groups: list[WorkerGroup] = Field(min_length=1)
    autoscaling: Autoscaling = Autoscaling()
    storage: Storage = Storage()
    job_ttl_seconds: int = Field(
        default=600, ge=0, description="how long an ephemeral RayJob's cluster outlives its job"
    )

    @property
    def default_image(self) -> str:
        return self.image or f"rayproject/ray:{self.ray_version}-py311"

    def groups_of(self, pool: str) -> list[WorkerGroup]:
        return [group for group in self.worker_groups if group.pool == pool]


class ConfigError(Exception):
    """A cluster config that does not hold; `errors` pairs a path in the file with a message."""

    def __init__(self, source: str, errors: list[tuple[str, str]]) -> None:
        self.source = source
        self.errors = errors
        lines = "\n".join(f"  {path}: {message}" for path, message in errors)
        super().__init__(f"{source} has {len(errors)} error(s):\n{lines}")


def path_of(location: tuple[int | str, ...]) -> str:
    """`('worker_groups', 1, 'pool')` as it reads in YAML terms: `worker_groups[1].pool`."""
    text = ""
    for part in location:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "(top level)"


def _cross_checks(config: ClusterConfig) -> list[tuple[str, str]]:
    """What one field cannot check alone: names that must point at pools, and bounds."""
    errors: list[tuple[str, str]] = []
    known = ", ".join(sorted(config.pools)) or "none"
    for name in config.pools:
        if not DNS_LABEL.match(name):
            errors.append((f"pools.{name}", "a pool name is a lowercase DNS label, e.g. gpu-a100"))
    if config.head.pool is not None and config.head.pool not in config.pools:
        errors.append(("head.pool", f"unknown pool {config.head.pool!r}; pools are: {known}"))
    seen: set[str] = set()
    for index, group in enumerate(config.worker_groups):
        at = f"worker_groups[{index}]"
        if group.name in seen:
            errors.append((f"{at}.name", f"worker group {group.name!r} is named twice"))
        seen.add(group.name)
        if group.min_replicas > group.max_replicas:
            errors.append(
                (
                    f"{at}.min_replicas",
                    f"{group.min_replicas} exceeds max_replicas {group.max_replicas}",
                )
            )
        pool = config.pools.get(group.pool)
        if pool is None:
            errors.append((f"{at}.pool", f"unknown pool {group.pool!r}; pools are: {known}"))
            continue
        vendor = pool.accelerator.vendor if pool.accelerator else None
        if group.gpu and vendor != "nvidia":
            errors.append(
                (f"{at}.gpu", f"pool {group.pool!r} has no GPU; give it an nvidia accelerator")
            )
        if group.npu and vendor != "ascend":
            errors.append(
                (f"{at}.npu", f"pool {group.pool!r} has no NPU; give it an ascend accelerator")
            )
    return errors


def parse(data: Any, source: str = "cluster config") -> ClusterConfig:
    """A checked config from parsed YAML; ConfigError lists every problem with its path."""
    try:
        config = ClusterConfig.model_validate(data)
    except ValidationError as exc:
        found = [
            (path_of(error["loc"]), error["msg"].removeprefix("Value error, "))
            for error in exc.errors()
        ]
        raise ConfigError(source, found) from None
    errors = _cross_checks(config)
    if errors:
        raise ConfigError(source, errors)
    return config


def load(path: Path) -> ClusterConfig:
    try:
        data = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise ConfigError(str(path), [("(file)", exc.strerror or str(exc))]) from None
    except yaml.YAMLError as exc:
        raise ConfigError(str(path), [("(file)", f"not valid YAML: {exc}")]) from None
    return parse(data, str(path))
