"""The LLM templates for real, in the LLM environment: `llm-tiny` as a job on the session's
Ray head (its folder loads with transformers there, its tokenizer round-trips, its chat
template renders; the CLI registers it by the job's id), `model-download` copying a local
folder as a job and saying plainly that the hub cannot be reached (this machine has no
internet), `model-register` recording an adapter's base, and `llm-finetune-lora` training an
adapter that the session's llm endpoint then serves."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from fabric.runtime import model_files
from tests import llm
from tests import llm_endpoint as llm_endpoints
from tests.cli.support import Fabric, ok
from tests.factories import create_project
from tests.server import Server
from tests.stacks import RAY_ONCE
from tests.templates.runs import local, run

# Loads the folder at argv[1] with transformers as vLLM would read it, and prints what the
# test checks: the tokenizer's round trip, the rendered chat, the logits' shape.
CHECK = """
import json, sys
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

folder = sys.argv[1]
tokenizer = AutoTokenizer.from_pretrained(folder)
model = AutoModelForCausalLM.from_pretrained(folder)
text = "Hello, wörld! Ray 🙂 runs jobs."
ids = tokenizer.encode(text, add_special_tokens=False)
chat = tokenizer.apply_chat_template(
    [{"role": "user", "content": "What is Fabric?"}], tokenize=False, add_generation_prompt=True
)
with torch.no_grad():
    logits = model(torch.tensor([ids])).logits
print(json.dumps({
    "decoded": tokenizer.decode(ids),
    "tokens": len(ids),
    "chat": chat,
    "logits": list(logits.shape),
    "vocab": len(tokenizer),
    "model_type": model.config.model_type,
    "head_dim": model.config.head_dim,
}))
"""


@RAY_ONCE
def test_llm_tiny_runs_in_the_llm_environment_and_registers_by_job_id(
    server: Server, tmp_path: Path
) -> None:
    python = llm.python()
    project = create_project(server)
    token = project.member.token
    outputs, run_dir = run(server, token, project.name, "llm-tiny", {"vocab_size": 300})
    job_id = int(run_dir.name.removeprefix("job-"))
    with server.client(token) as client:
        job = client.get(f"/api/v1/projects/{project.name}/jobs/{job_id}").json()
    # The server's environment has no transformers: the job ran in the LLM environment.
    assert job["entrypoint"].startswith(f"{python} -m jobs.llm_tiny")
    assert outputs["framework"] == "llm"
    folder = Path(outputs["model_uri"])
    assert folder == run_dir / "model"
    assert outputs["vocab_size"] <= 300

    checked = llm.run("-c", CHECK, str(folder))
    assert checked.returncode == 0, checked.stderr
    found = json.loads(checked.stdout.splitlines()[-1])
    assert found["decoded"] == "Hello, wörld! Ray 🙂 runs jobs."
    assert (
        found["chat"]
        == "<|begin_of_text|><|user|>\nWhat is Fabric?<|end_of_text|>\n<|assistant|>\n"
    )
    assert found["logits"] == [1, found["tokens"], found["vocab"]]
    assert (found["model_type"], found["head_dim"]) == ("llama", 32)

    fabric = Fabric(server, tmp_path / "home")
    registered = ok(fabric("model", "register", project.name, "tiny", str(job_id), token=token))
    assert registered.stdout.strip() == "model tiny version 1 (llm) registered"
    by_path = ok(
        fabric(
            "model",
            "register",
            project.name,
            "tiny",
            str(folder),
            "--framework",
            "llm",
            token=token,
        )
    )
    assert by_path.stdout.strip() == "model tiny version 2 (llm) registered"
    shown = json.loads(
        ok(fabric("model", "show", project.name, "tiny", "1", "--json", token=token)).stdout
    )
    assert (shown["framework"], shown["lineage"]["job"]) == ("llm", job_id)


@RAY_ONCE
def test_model_download_copies_a_local_folder(
    server: Server, tmp_path_factory: pytest.TempPathFactory
) -> None:
    tiny = llm.tiny_model(tmp_path_factory)
    project = create_project(server)
    token = project.member.token
    # A folder the cluster reaches: the user's own storage.
    user_dir = Path(server.settings.storage_root) / "users" / project.member.username / "tiny"
    shutil.copytree(tiny, user_dir)
    outputs, _ = run(
        server,
        token,
        project.name,
        "model-download",
        {"model": f"file://{user_dir}", "ignore_patterns": ["generation_config.json"]},
    )
    target = Path(outputs["model_uri"])
    project_dir = Path(server.settings.storage_root) / "projects" / project.name
    assert target == project_dir / "hub" / "tiny"
    assert outputs["framework"] == "llm"
    copied = {p.name for p in target.iterdir()}
    assert copied == {p.name for p in tiny.iterdir()} - {"generation_config.json"}
    assert outputs["files"] == len(copied)


def test_model_download_says_plainly_that_the_hub_cannot_be_reached(tmp_path: Path) -> None:
    """No internet here: the hub is unreachable, and the job says so in one message."""
    failed = llm.run(
        "-m",
        "jobs.model_download",
        "--model",
        "Qwen/Qwen2.5-0.5B-Instruct",
        env={
            "FABRIC_RUN_DIR": str(tmp_path / "run"),
            "FABRIC_PROJECT_DIR": str(tmp_path / "project"),
            "HF_HOME": str(tmp_path / "hf"),
            "HF_HUB_ETAG_TIMEOUT": "5",
        },
    )
    assert failed.returncode == 1
    assert "Traceback" not in failed.stderr
    message = failed.stderr.strip().splitlines()[-1]
    assert message.startswith(
        "model-download: cannot reach the Hugging Face hub at https://huggingface.co to fetch "
        "Qwen/Qwen2.5-0.5B-Instruct@main (ConnectError: "
    ), message
    assert message.endswith(
        "Where this cluster has no internet access, download the model elsewhere and give its "
        "folder instead (a path or file:// URL the cluster reaches), or name a mirror with "
        "endpoint"
    ), message
    assert not (tmp_path / "project" / "hub" / "Qwen--Qwen2.5-0.5B-Instruct" / "main").exists()


def test_model_register_records_an_adapters_base(
    tmp_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """The job (in the cluster's own environment: it only copies files) pins the base's alias
    to its version, and refuses an adapter without a base."""
    tiny, adapter = llm.tiny_model(tmp_path_factory), llm.adapter(tmp_path_factory)
    project = tmp_path / "project"
    env = {"FABRIC_PROJECT_DIR": str(project)}

    def register(*args: str) -> str:
        done = local("jobs.model_register", *args, cwd=tmp_path, env=env)
        return done.stdout + done.stderr

    assert "tiny version 1 (llm)" in register("--model", str(tiny), "--name", "tiny")
    (project / "models" / "tiny" / "aliases.json").write_text('{"production": 1}')
    refused = register("--model", str(adapter), "--name", "style")
    assert "a lora adapter names the llm version it adapts" in refused
    assert "style version 1 (lora)" in register(
        "--model", str(adapter), "--name", "style", "--base", "tiny@production"
    )
    manifest = json.loads((project / "models" / "style" / "1" / "manifest.json").read_text())
    assert manifest["base"] == {"model": "tiny", "version": 1}
    not_llm = register("--model", str(adapter), "--name", "style", "--base", "style@1")
    assert "is lora, not llm" in not_llm
    assert model_files.locate(project / "models", "style").name == "1"


# Chats and pairs, each several times: a few epochs at a high rate move the adapter far enough
# from the base that its greedy answers differ.
FINETUNE_SET = [
    {
        "messages": [
            {"role": "user", "content": "hello there"},
            {"role": "assistant", "content": "Ray!"},
        ]
    },
    {"prompt": "Fabric runs", "completion": " on Ray."},
] * 4


@RAY_ONCE
def test_llm_finetune_lora_trains_resumes_registers_and_is_served(
    llm_endpoint: llm_endpoints.Scene,
) -> None:
    """Fine-tune the endpoint's own base (model:tiny@1) on Ray Train, continue from its
    checkpoint for one more epoch, register the adapter from the job (its base comes with
    it), and call it through the endpoint: greedy answers differ from the base's."""
    scene = llm_endpoint
    token = scene.project.member.token
    storage = Path(scene.server.settings.storage_root) / "projects" / scene.project.name
    dataset = storage / "incoming" / "chats.jsonl"
    dataset.write_text("\n".join(json.dumps(row) for row in FINETUNE_SET))
    params = {"model": "model:tiny@1", "dataset": str(dataset), "learning_rate": 0.05, "r": 4}
    request = {"workers": 1, "worker_resources": {"cpu": 0.5}}
    first, first_dir = run(
        scene.server,
        token,
        scene.project.name,
        "llm-finetune-lora",
        {**params, "epochs": 2},
        **request,
    )
    assert first["base"] == {"model": "tiny", "version": 1}
    assert first["framework"] == "lora" and first["examples"] == len(FINETUNE_SET)
    outputs, run_dir = run(
        scene.server,
        token,
        scene.project.name,
        "llm-finetune-lora",
        {**params, "epochs": 3, "resume_from": str(first_dir)},
        **request,
    )
    assert outputs["epochs"] == 3
    epochs = [
        json.loads(line)["epoch"]
        for line in (run_dir / "metrics.jsonl").read_text().splitlines()
        if "epoch" in line
    ]
    assert epochs == [3], "it went on from the first run's second epoch"
    job = int(run_dir.name.removeprefix("job-"))
    with scene.member() as client:
        registered = client.post(f"{scene.base}/models/tuned/versions", json={"source": str(job)})
    assert registered.status_code == 201, registered.text
    assert registered.json()["framework"] == "lora"
    client = scene.openai()
    asked = {"messages": llm_endpoints.HELLO, "max_tokens": 8, "temperature": 0, "seed": 1}
    base = client.chat.completions.create(model="tiny", **asked)
    tuned = client.chat.completions.create(model="tiny:tuned", **asked)
    assert tuned.choices[0].message.content != base.choices[0].message.content
