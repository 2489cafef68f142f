"""What the registry accepts as a large language model or a LoRA adapter: checked by files.

An `llm` version is a Hugging Face model folder: `config.json`, a tokenizer with a chat
template, and its weights as safetensors (one file, or shards with their index). A `lora`
version is a peft adapter folder: `adapter_config.json` and the adapter's weights; it names
the `llm` version it adapts (its base). Both are checked here by what the folder holds, so
that the `model-register` job and the server refuse the same folders with the same message;
nothing is loaded (the server has no transformers: vLLM's environment has). Light at import.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

LLM = "llm"
LORA = "lora"
FRAMEWORKS = (LLM, LORA)
CONFIG = "config.json"
ADAPTER_CONFIG = "adapter_config.json"
TOKENIZER_CONFIG = "tokenizer_config.json"
SAFETENSORS_INDEX = "model.safetensors.index.json"
# A tokenizer's own files: a fast tokenizer's, a SentencePiece model, or BPE's or WordPiece's.
TOKENIZERS = (
    ("tokenizer.json",),
    ("tokenizer.model",),
    ("vocab.json", "merges.txt"),
    ("vocab.txt",),
)
CHAT_TEMPLATE_FILES = ("chat_template.jinja", "chat_template.json")
ADAPTER_WEIGHTS = ("adapter_model.safetensors", "adapter_model.bin")


class FolderError(ValueError):
    """A folder that is not what its framework needs; the message names what is missing."""


def _json(path: Path) -> dict[str, Any] | None:
    """The JSON object in the file, or None when it is missing or not a JSON object."""
    try:
        value = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return value if isinstance(value, dict) else None


def looks_like(path: Path) -> str | None:
    """The framework a folder looks like (`lora`, `llm`), or None."""
    if not path.is_dir():
        return None
    if (path / ADAPTER_CONFIG).is_file():
        return LORA
    if (path / CONFIG).is_file() and any(path.glob("*.safetensors")):
        return LLM
    return None


def has_chat_template(path: Path) -> bool:
    if any((path / name).is_file() for name in CHAT_TEMPLATE_FILES):
        return True
    tokenizer_config = _json(path / TOKENIZER_CONFIG) or {}
    return bool(tokenizer_config.get("chat_template"))


def llm_missing(path: Path) -> list[str]:
    """What the folder lacks to be an `llm` version; empty when it has everything."""
    missing = []
    if _json(path / CONFIG) is None:
        missing.append(f"{CONFIG} (the model's configuration, a JSON object)")
    if not any(all((path / name).is_file() for name in files) for files in TOKENIZERS):
        names = ", ".join(" + ".join(files) for files in TOKENIZERS)
        missing.append(f"the tokenizer's files (one of {names})")
    if not has_chat_template(path):
        missing.append(
            f"a chat template ({' or '.join(CHAT_TEMPLATE_FILES)}, or chat_template in "
            f"{TOKENIZER_CONFIG})"
        )
    index = _json(path / SAFETENSORS_INDEX)
    if index is not None:
        shards = sorted(set(index.get("weight_map", {}).values()))
        absent = [name for name in shards if not (path / name).is_file()]
        if absent or not shards:
            missing.append(f"the weights {SAFETENSORS_INDEX} names: {', '.join(absent) or 'none'}")
    elif not any(path.glob("*.safetensors")):
        missing.append("the weights as *.safetensors (save_pretrained(safe_serialization=True))")
    return missing


def lora_missing(path: Path) -> list[str]:
    """What the folder lacks to be a `lora` version; empty when it has everything."""
    missing = []
    config = _json(path / ADAPTER_CONFIG)
    if config is None:
        missing.append(f"{ADAPTER_CONFIG} (peft's adapter configuration, a JSON object)")
    elif str(config.get("peft_type", "LORA")).upper() != "LORA":
        missing.append(f"a LoRA adapter: its {ADAPTER_CONFIG} says peft_type {config['peft_type']}")
    if not any((path / name).is_file() for name in ADAPTER_WEIGHTS):
        missing.append(f"the adapter's weights ({' or '.join(ADAPTER_WEIGHTS)})")
    return missing


def check(path: Path, framework: str) -> None:
    """Refuse a folder that is not a whole `llm` or `lora` version (FolderError naming what
    is missing); any other framework is left alone."""
    if framework not in FRAMEWORKS:
        return
    kind = "a Hugging Face model folder" if framework == LLM else "a peft adapter folder"
    if not path.is_dir():
        raise FolderError(f"a {framework} model is {kind}; {path} is not a folder")
    missing = llm_missing(path) if framework == LLM else lora_missing(path)
    if missing:
        raise FolderError(
            f"{path} is not {kind} as {framework} needs; it lacks {'; '.join(missing)}"
        )


def check_base(framework: str, base: object | None) -> None:
    """A lora adapter names its base (the llm version it adapts); nothing else has one."""
    if framework == LORA and base is None:
        raise FolderError(
            "a lora adapter names the llm version it adapts: give its base as MODEL@VERSION"
        )
    if framework != LORA and base is not None:
        raise FolderError(f"only a lora adapter has a base; this model is {framework}")
