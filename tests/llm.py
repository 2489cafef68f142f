"""The LLM environment in tests: its Python, and real models made with it (the `llm-tiny`
template's tiny Llama, and a LoRA adapter of it made with peft).

`make install` builds the environment (`.venv-llm`), so CI has it and a test that needs it
fails there without it; elsewhere such a test is skipped, saying why.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from fabric.config import Settings
from tests.needs import missing

ROOT = Path(__file__).resolve().parent.parent

# A LoRA adapter of the model at argv[1], saved in argv[2]: real peft, with both of its
# matrices random (peft's default leaves one at zero, which changes no answer).
ADAPTER = """
import sys
from peft import LoraConfig, get_peft_model
from transformers import AutoModelForCausalLM

base = AutoModelForCausalLM.from_pretrained(sys.argv[1])
config = LoraConfig(
    r=4,
    lora_alpha=64,
    target_modules=["q_proj", "v_proj"],
    task_type="CAUSAL_LM",
    init_lora_weights=False,
)
get_peft_model(base, config).save_pretrained(sys.argv[2])
"""


def python() -> Path:
    """The LLM environment's Python (FABRIC_LLM_PYTHON or the checkout's `.venv-llm`)."""
    found = Settings().llm_executable
    if found is None or not found.exists():
        missing("the LLM environment (.venv-llm)", "`make install` builds it")
    return found


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """The LLM environment's Python with these arguments, offline, from the repository."""
    return subprocess.run(
        [str(python()), *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=240,
        env={
            "PATH": os.environ.get("PATH", ""),
            "HOME": os.environ.get("HOME", "/tmp"),
            "HF_HUB_DISABLE_TELEMETRY": "1",
            **(env or {}),
        },
    )


def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny Llama folder made by `python -m jobs.llm_tiny` in the LLM environment, once per
    session (a few seconds)."""
    run_dir = tmp_path_factory.getbasetemp() / "llm-tiny-run"
    folder = run_dir / "model"
    if not (folder / "config.json").exists():
        made = run("-m", "jobs.llm_tiny", env={"FABRIC_RUN_DIR": str(run_dir)})
        assert made.returncode == 0, made.stderr
    return folder


def adapter(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A peft LoRA adapter of the tiny model, once per session."""
    folder = tmp_path_factory.getbasetemp() / "llm-tiny-adapter"
    if not (folder / "adapter_config.json").exists():
        made = run("-c", ADAPTER, str(tiny_model(tmp_path_factory)), str(folder))
        assert made.returncode == 0, made.stderr
    return folder
