"""`llm-finetune-lora`: a LoRA adapter (peft) of an `llm` model, trained on a JSONL dataset on
Ray Train's workers; a checkpoint each epoch, and resume.

Each line of the dataset is a chat (`{"messages": [{"role", "content"}, ...]}`, laid out by
the model's own chat template, the loss on the assistant's turns) or a pair (`{"prompt",
"completion"}`, the loss on the completion). The workers train with DDP (gloo on CPU, NCCL
on GPUs when granted). The adapter is saved as peft saves it, and names its base when the
model was a registered version, so `model-register` registers it as a `lora` version of that
base, which the base's llm endpoints serve at once as `BASE:ADAPTER`. Runs in the LLM
environment (torch, transformers, peft).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import Field, model_validator

from fabric import runtime
from fabric.runtime import model_files, model_store
from jobs import _train

NAME = "llm-finetune-lora"
ADAPTER_FOLDER = "adapter"
# In each checkpoint besides the adapter: the optimizer and the epochs done so far.
STATE_FILE = "state.pt"
# Tokens a label is given that the loss leaves out (the prompt, padding): PyTorch's default.
IGNORED = -100


class Params(model_files.SavedModel):
    model: str = Field(
        description="the llm model to adapt: a registered version as model:NAME@VERSION (the "
        "adapter then names it as its base), a job id of the job that made it, or its folder"
    )
    dataset: str = Field(
        description="a JSONL file: each line {'messages': [...]} or {'prompt', 'completion'}"
    )
    r: int = Field(default=8, ge=1, le=256, description="LoRA's rank")
    alpha: int = Field(default=16, ge=1, le=1024, description="LoRA's scaling (lora_alpha)")
    dropout: float = Field(default=0.0, ge=0, lt=1, description="LoRA's dropout")
    target_modules: list[str] = Field(
        default=["q_proj", "v_proj"], min_length=1, description="the layers LoRA adapts"
    )
    epochs: int = Field(default=3, ge=1, le=1000, description="epochs in all, resumed ones too")
    batch_size: int = Field(default=4, ge=1, le=1024, description="examples per step per worker")
    learning_rate: float = Field(default=2e-4, gt=0, le=1, description="AdamW's learning rate")
    max_length: int = Field(default=256, ge=8, le=32768, description="tokens kept per example")
    seed: int = Field(default=0)
    resume_from: str | None = Field(
        default=None,
        description="a checkpoint folder, or an earlier run's folder whose latest checkpoint "
        "to continue from; a retried job continues from its own latest by itself",
    )

    @model_validator(mode="after")
    def _an_llm(self) -> Params:
        if self.framework not in (None, "llm"):
            raise ValueError("framework: a LoRA adapter adapts an llm model")
        return self


def examples(path: Path) -> list[dict[str, Any]]:
    """The dataset's lines, each a chat or a pair; SystemExit naming the first bad line."""
    if not path.is_file():
        raise SystemExit(f"{NAME}: no dataset at {path}")
    found = []
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except ValueError as exc:
            raise SystemExit(f"{NAME}: {path} line {number} is not JSON: {exc}") from None
        chat = isinstance(row, dict) and isinstance(row.get("messages"), list)
        pair = isinstance(row, dict) and {"prompt", "completion"} <= set(row)
        if not (chat or pair):
            raise SystemExit(
                f"{NAME}: {path} line {number}: give {{'messages': [...]}} or "
                "{'prompt': ..., 'completion': ...}"
            )
        found.append(row)
    if not found:
        raise SystemExit(f"{NAME}: {path} holds no examples")
    return found


def encode(tokenizer: Any, row: dict[str, Any], max_length: int) -> tuple[list[int], list[int]]:
    """Token ids and labels of one example: the loss on what the model should say."""
    if "messages" in row:
        ids: list[int] = []
        labels: list[int] = []
        for turn in range(len(row["messages"])):
            upto = tokenizer.apply_chat_template(row["messages"][: turn + 1], tokenize=True)
            # A list of ids, or (transformers 5) an encoding holding them.
            upto = list(upto if isinstance(upto, list) else upto["input_ids"])
            new = upto[len(ids) :]
            speaks = row["messages"][turn].get("role") == "assistant"
            labels += new if speaks else [IGNORED] * len(new)
            ids = upto
    else:
        prompt = tokenizer(row["prompt"])["input_ids"]
        completion = tokenizer(row["completion"])["input_ids"] + [tokenizer.eos_token_id]
        ids = prompt + completion
        labels = [IGNORED] * len(prompt) + completion
    return ids[:max_length], labels[:max_length]


def train_loop(config: dict[str, Any]) -> None:
    """On each worker: the base with a LoRA adapter, trained with DDP on its share of the
    examples; rank 0 checkpoints the adapter and the optimizer each epoch."""
    import tempfile

    import ray.train
    import ray.train.torch
    import torch

    # These live in the LLM environment (.venv-llm), not the server's: nothing for pyright.
    from peft import (  # pyright: ignore[reportMissingImports]
        LoraConfig,
        get_peft_model,
        set_peft_model_state_dict,
    )
    from safetensors.torch import load_file  # pyright: ignore[reportMissingImports]
    from transformers import (  # pyright: ignore[reportMissingImports]
        AutoModelForCausalLM,
        AutoTokenizer,
    )

    torch.manual_seed(config["seed"])
    tokenizer = AutoTokenizer.from_pretrained(config["base"])
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    model = get_peft_model(
        AutoModelForCausalLM.from_pretrained(config["base"], dtype=torch.float32),
        LoraConfig(
            r=config["r"],
            lora_alpha=config["alpha"],
            lora_dropout=config["dropout"],
            target_modules=config["target_modules"],
            task_type="CAUSAL_LM",
        ),
    )
    optimizer = torch.optim.AdamW(
        [p for p in model.parameters() if p.requires_grad], lr=config["learning_rate"]
    )
    done = 0
    resumed = ray.train.get_checkpoint() or (
        ray.train.Checkpoint.from_directory(config["resume"]) if config["resume"] else None
    )
    if resumed:
        with resumed.as_directory() as folder:
            weights = load_file(str(Path(folder) / ADAPTER_FOLDER / "adapter_model.safetensors"))
            set_peft_model_state_dict(model, weights)
            state = torch.load(Path(folder) / STATE_FILE, weights_only=True)
        optimizer.load_state_dict(state["optimizer"])
        done = state["epoch"]
    trained: Any = ray.train.torch.prepare_model(model)
    context = ray.train.get_context()
    rank, size = context.get_world_rank(), context.get_world_size()
    rows = [encode(tokenizer, row, config["max_length"]) for row in config["examples"]]
    mine = rows[rank::size] or rows[:1]
    generator = torch.Generator().manual_seed(config["seed"] + rank)
    for epoch in range(done + 1, config["epochs"] + 1):
        trained.train()
        total = torch.zeros(2)  # loss sum, batches
        order = torch.randperm(len(mine), generator=generator).tolist()
        for start in range(0, len(order), config["batch_size"]):
            batch = [mine[i] for i in order[start : start + config["batch_size"]]]
            width = max(len(ids) for ids, _ in batch)
            ids = torch.tensor([i + [pad] * (width - len(i)) for i, _ in batch])
            labels = torch.tensor([lab + [IGNORED] * (width - len(lab)) for _, lab in batch])
            mask = torch.tensor([[1] * len(i) + [0] * (width - len(i)) for i, _ in batch])
            optimizer.zero_grad()
            loss = trained(input_ids=ids, attention_mask=mask, labels=labels).loss
            loss.backward()
            optimizer.step()
            total += torch.tensor([loss.item(), 1.0])
        # Every worker's batches count: the loss is of the whole dataset, not one share.
        torch.distributed.all_reduce(total)
        metrics = {"epoch": epoch, "loss": float(total[0] / total[1])}
        with tempfile.TemporaryDirectory() as folder:
            checkpoint = None
            if rank == 0:
                getattr(trained, "module", trained).save_pretrained(Path(folder) / ADAPTER_FOLDER)
                torch.save(
                    {"optimizer": optimizer.state_dict(), "epoch": epoch},
                    Path(folder) / STATE_FILE,
                )
                checkpoint = ray.train.Checkpoint.from_directory(folder)
            ray.train.report(metrics, checkpoint=checkpoint)


def _base(params: Params, source: model_files.Source) -> dict[str, Any] | str | None:
    """What the adapter adapts, for `model-register`: a registered version as the registry
    knows it, else what the source's run recorded as its name (or nothing)."""
    if params.model.startswith(model_files.REGISTERED):
        reference = params.model.removeprefix(model_files.REGISTERED)
        return model_store.base_of(runtime.project_dir() / "models", reference)
    return source.outputs.get("base")


def run(params: Params) -> dict[str, Any]:
    import shutil

    import torch

    try:
        source = model_files.resolve(params.model, "llm")
    except model_files.ModelError as exc:
        raise SystemExit(f"{NAME}: {exc}") from None
    rows = examples(Path(params.dataset))
    resume = _train.resume_point(NAME, params.resume_from)
    if resume:
        done = int(torch.load(resume / STATE_FILE, weights_only=True)["epoch"])
        if done >= params.epochs:
            raise SystemExit(
                f"{NAME}: {resume} has {done} epochs already; ask for more --epochs to go on"
            )
        print(f"{NAME}: resuming from {resume} after epoch {done}", flush=True)
    print(f"{NAME}: {len(rows)} examples, adapting {source.uri}", flush=True)
    config = {
        **params.model_dump(include={"r", "alpha", "dropout", "target_modules", "epochs"}),
        **params.model_dump(include={"batch_size", "learning_rate", "max_length", "seed"}),
        "base": str(source.uri),
        "examples": rows,
        "resume": str(resume) if resume else None,
    }
    result = _train.torch_trainer(NAME, train_loop, config).fit()
    if result.checkpoint is None:
        raise SystemExit(f"{NAME}: training saved no checkpoint: {result.error}")
    checkpoint = Path(result.checkpoint.path)
    adapter = runtime.run_dir() / ADAPTER_FOLDER
    shutil.copytree(checkpoint / ADAPTER_FOLDER, adapter, dirs_exist_ok=True)
    outputs: dict[str, Any] = {
        "model_uri": str(adapter),
        "framework": "lora",
        "checkpoint_uri": str(checkpoint),
        "metrics": {"loss": float((result.metrics or {}).get("loss", float("nan")))},
        "epochs": params.epochs,
        "examples": len(rows),
    }
    base = _base(params, source)
    if base:
        outputs["base"] = base
    return outputs


TEMPLATE = runtime.Template(
    name=NAME,
    group="llm",
    description=(
        "Fine-tune a LoRA adapter (peft) of an llm model on a JSONL dataset of chats or "
        "prompt/completion pairs, with DDP on Ray Train workers (CPU when no GPU is granted). "
        "Checkpoints every epoch and resumes from one; the adapter registers as a lora version "
        "of its base, served by the base's llm endpoints."
    ),
    params=Params,
    run=run,
    resources=_train.DRIVER_RESOURCES,
    environment=runtime.LLM_ENVIRONMENT,
    outputs={
        "model_uri": "the adapter's folder (adapter_config.json, adapter_model.safetensors)",
        "framework": "lora",
        "base": "the registered llm version it adapts, when the model was one",
        "checkpoint_uri": "the last epoch's Ray Train checkpoint (adapter, optimizer, epoch)",
        "metrics": "the last epoch's training loss",
        "epochs": "epochs trained in all, counting those resumed from",
        "examples": "examples trained on",
    },
    workers=1,
    worker_resources={"cpu": 1.0},
)

if __name__ == "__main__":
    TEMPLATE.main()
