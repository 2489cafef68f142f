"""`fabric endpoint deploy --kind llm` and `fabric usage --group-by key` on the session's one
llm endpoint (tests/llm_endpoint.py)."""

from __future__ import annotations

from tests.cli.support import Fabric, ok
from tests.llm_endpoint import ENDPOINT, HELLO, Scene
from tests.stacks import RAY_ONCE

pytestmark = RAY_ONCE


def test_deploy_with_engine_options_builds_the_llm_spec(
    llm_endpoint: Scene, fabric: Fabric
) -> None:
    """The same spec as the session's endpoint, given as options: Serve restarts nothing,
    since only the rate limit (the door's) changed."""
    scene = llm_endpoint
    token = scene.project.member.token
    engines = scene.engines()
    deployed = fabric(
        "endpoint",
        "deploy",
        scene.project.name,
        ENDPOINT,
        "--model",
        "tiny",
        "--kind",
        "llm",
        "--cpu",
        "0.5",
        "--max-model-len",
        "256",
        "--dtype",
        "float32",
        "--requests-per-minute",
        "999",
        "--timeout",
        "30",
        token=token,
    )
    ok(deployed)
    assert f"/serve/{scene.project.name}/{ENDPOINT}/v1 (OpenAI's API)" in deployed.stdout
    with scene.member() as client:
        shown = client.get(f"{scene.base}/endpoints/{ENDPOINT}").json()
    assert shown["spec"]["kind"] == "llm"
    assert shown["spec"]["engine"]["max_model_len"] == 256
    assert shown["spec"]["rate_limit"] == {"requests_per_minute": 999, "tokens_per_minute": None}
    assert scene.running(timeout=30)["spec"] == shown["spec"]
    assert scene.engines() == engines


def test_usage_by_key_shows_each_keys_tokens(llm_endpoint: Scene, fabric: Fabric) -> None:
    scene = llm_endpoint
    scene.openai().chat.completions.create(model="tiny", messages=HELLO, max_tokens=2)
    table = ok(
        fabric("usage", scene.project.name, "--group-by", "key", token=scene.project.member.token)
    ).stdout
    lines = table.splitlines()
    assert lines[0].split() == ["ENDPOINT", "KEY", "RESOURCE", "TOKENS", "COST"]
    laptop = [line.split() for line in lines[1:] if line.split()[:2] == [ENDPOINT, "laptop"]]
    assert {row[2] for row in laptop} == {"prompt_tokens", "completion_tokens"}
    assert all(int(row[3]) > 0 for row in laptop)
