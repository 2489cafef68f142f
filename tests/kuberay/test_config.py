"""Cluster configs: shipped ones hold, broken ones fail naming the field, the CLI says so."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from fabric.cli.main import app
from kuberay import config

CONFIGS = sorted((Path(__file__).parents[2] / "cluster_configs").glob("*.yaml"))


def _valid() -> dict[str, Any]:
    return {
        "name": "small",
        "head": {"cpu": 1, "memory": "2Gi"},
        "pools": {"cpu": {}, "gpu": {"accelerator": {"vendor": "nvidia", "type": "T4"}}},
        "worker_groups": [
            {"name": "w", "pool": "cpu", "cpu": 2, "memory": "4Gi", "max_replicas": 3}
        ],
    }


def _with(change: dict[str, Any], group: dict[str, Any] | None = None) -> dict[str, Any]:
    data = {**_valid(), **change}
    if group is not None:
        data["worker_groups"] = [{**data["worker_groups"][0], **group}]
    return data


def test_every_shipped_config_holds() -> None:
    assert [path.stem for path in CONFIGS] == [
        "cpu-pool",
        "edge-pool",
        "gpu-pool",
        "local",
        "npu-pool",
    ]
    for path in CONFIGS:
        assert config.load(path).name == path.stem


BROKEN = {
    "unknown pool": (
        _with({}, {"pool": "tpu"}),
        "worker_groups[0].pool",
        "unknown pool 'tpu'; pools are: cpu, gpu",
    ),
    "unknown head pool": (
        _with({"head": {"cpu": 1, "memory": "2Gi", "pool": "system"}}),
        "head.pool",
        "unknown pool 'system'",
    ),
    "negative replicas": (
        _with({}, {"min_replicas": -1}),
        "worker_groups[0].min_replicas",
        "greater than or equal to 0",
    ),
    "min above max": (
        _with({}, {"min_replicas": 5}),
        "worker_groups[0].min_replicas",
        "5 exceeds max_replicas 3",
    ),
    "GPU without a GPU pool": (
        _with({}, {"gpu": 1}),
        "worker_groups[0].gpu",
        "pool 'cpu' has no GPU",
    ),
    "NPU on an NVIDIA pool": (
        _with({}, {"pool": "gpu", "npu": 8}),
        "worker_groups[0].npu",
        "pool 'gpu' has no NPU",
    ),
    "bad quantity": (
        _with({}, {"memory": "4 GB"}),
        "worker_groups[0].memory",
        "'4 GB' is not a quantity",
    ),
    "negative quantity": (
        _with({"head": {"cpu": "-1", "memory": "2Gi"}}),
        "head.cpu",
        "'-1' is not a quantity",
    ),
    "misspelt key": (
        _with({}, {"max_replica": 3}),
        "worker_groups[0].max_replica",
        "Extra inputs are not permitted",
    ),
    "unknown vendor": (
        _with({"pools": {"cpu": {}, "gpu": {"accelerator": {"vendor": "amd", "type": "MI300"}}}}),
        "pools.gpu.accelerator.vendor",
        "'nvidia' or 'ascend'",
    ),
    "bad MIG profile": (
        _with(
            {
                "pools": {
                    "cpu": {},
                    "gpu": {
                        "accelerator": {"vendor": "nvidia", "type": "A100", "mig_profile": "1g"}
                    },
                }
            }
        ),
        "pools.gpu.accelerator.mig_profile",
        "should match pattern",
    ),
    "group named twice": (
        {**_valid(), "worker_groups": _valid()["worker_groups"] * 2},
        "worker_groups[1].name",
        "named twice",
    ),
}


@pytest.mark.parametrize("case", BROKEN)
def test_a_broken_config_names_the_field(case: str) -> None:
    data, path, message = BROKEN[case]
    with pytest.raises(config.ConfigError) as caught:
        config.parse(data)
    paths = {where: text for where, text in caught.value.errors}
    assert path in paths, caught.value.errors
    assert message in paths[path]


def test_the_cli_validates_and_reports_each_error_with_its_path(tmp_path: Path) -> None:
    runner = CliRunner()
    good = runner.invoke(app, ["cluster-config", "validate", str(CONFIGS[2])])
    assert good.exit_code == 0, good.output
    assert "ok: gpu-pool" in good.output and "mig-1g on a100-mig (0-14)" in good.output

    bad = tmp_path / "bad.yaml"
    data = _with({"head": {"cpu": "two", "memory": "2Gi"}}, {"min_replicas": -2})
    bad.write_text(yaml.safe_dump(data))
    result = runner.invoke(app, ["cluster-config", "validate", str(bad)])
    assert result.exit_code == 1
    lines = result.stderr.strip().splitlines()
    assert lines == [
        f"{bad}: head.cpu: 'two' is not a quantity; use e.g. 2, 500m or 8Gi",
        f"{bad}: worker_groups[0].min_replicas: Input should be greater than or equal to 0",
    ]
    assert "Traceback" not in result.output

    missing = runner.invoke(app, ["cluster-config", "validate", str(tmp_path / "none.yaml")])
    assert missing.exit_code == 1 and "(file): No such file or directory" in missing.stderr
