"""`llm-tiny`: a tiny Llama-architecture model with random weights, and a byte-level BPE
tokenizer trained on given text, with a chat template, saved as a Hugging Face folder.

Its answers are noise, but it has the shape of a real chat model (config, tokenizer with a
chat template, safetensors weights), so that registering, serving, fine-tuning and the demo
work where no model hub is reachable. The shape is one vLLM's CPU attention accepts
(head_dim 32; 16 fails). Runs in the LLM environment (transformers, tokenizers, torch).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from fabric import runtime

NAME = "llm-tiny"
FOLDER = "model"
BOS, EOS, PAD = "<|begin_of_text|>", "<|end_of_text|>", "<|pad|>"
# Each message on its own turn, the role first; a generation prompt opens the assistant's.
CHAT_TEMPLATE = (
    "{{ bos_token }}"
    "{% for message in messages %}"
    "<|{{ message['role'] }}|>\n{{ message['content'] }}{{ eos_token }}\n"
    "{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>\n{% endif %}"
)
DEFAULT_TEXT = """\
Fabric runs machine learning on Ray: jobs, pipelines, a model registry and endpoints.
A project has members, quotas and its own storage; its jobs run on its Ray cluster.
The quick brown fox jumps over the lazy dog. Pack my box with five dozen liquor jugs.
Hello! How are you today? I am fine, thank you. What can I do for you?
user: tell me about the weather. assistant: it is sunny, with a light breeze.
0 1 2 3 4 5 6 7 8 9 10 100 1000; (a + b) * c = d / e - f % g.
"""


class Params(BaseModel):
    text: str = Field(
        default=DEFAULT_TEXT,
        min_length=1,
        description="the text the tokenizer is trained on, one sample per line; by default a "
        "few lines of English",
    )
    vocab_size: int = Field(
        default=320,
        ge=260,
        le=32000,
        description="the tokenizer's vocabulary at most: its 256 bytes, 3 special tokens and "
        "the merges the text allows",
    )
    max_length: int = Field(
        default=512, ge=16, le=8192, description="the longest sequence (max_position_embeddings)"
    )
    seed: int = Field(default=0, description="seeds the random weights")


def tokenizer(text: str, vocab_size: int) -> Any:
    """A byte-level BPE tokenizer trained on the text's lines, as transformers' fast tokenizer
    with the special tokens and the chat template."""
    # These live in the LLM environment (.venv-llm), not the server's: nothing for pyright.
    from tokenizers import (  # pyright: ignore[reportMissingImports]
        Tokenizer,
        decoders,
        models,
        pre_tokenizers,
        trainers,
    )
    from transformers import PreTrainedTokenizerFast  # pyright: ignore[reportMissingImports]

    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=1,
        special_tokens=[BOS, EOS, PAD],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    lines = [line for line in text.splitlines() if line.strip()] or [text]
    bpe.train_from_iterator(lines, trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=bpe, bos_token=BOS, eos_token=EOS, pad_token=PAD
    )
    fast.chat_template = CHAT_TEMPLATE
    return fast


def run(params: Params) -> dict[str, Any]:
    import torch  # pyright: ignore[reportMissingImports]  (as above)
    from transformers import (  # pyright: ignore[reportMissingImports]
        GenerationConfig,
        LlamaConfig,
        LlamaForCausalLM,
    )

    folder: Path = runtime.run_dir() / FOLDER
    tok = tokenizer(params.text, params.vocab_size)
    ids = {token: tok.convert_tokens_to_ids(token) for token in (BOS, EOS, PAD)}
    config = LlamaConfig(
        vocab_size=len(tok),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=2,
        head_dim=32,
        max_position_embeddings=params.max_length,
        bos_token_id=ids[BOS],
        eos_token_id=ids[EOS],
        pad_token_id=ids[PAD],
        tie_word_embeddings=False,
    )
    torch.manual_seed(params.seed)
    model = LlamaForCausalLM(config)
    model.generation_config = GenerationConfig(
        bos_token_id=ids[BOS], eos_token_id=ids[EOS], pad_token_id=ids[PAD]
    )
    model.save_pretrained(folder)
    tok.save_pretrained(folder)
    for path in folder.iterdir():
        path.chmod(0o644)  # safetensors writes its file for its owner alone
    weights = sorted(path.name for path in folder.glob("*.safetensors"))
    size = sum(p.numel() for p in model.parameters())
    print(
        f"{NAME}: {size} parameters, a vocabulary of {len(tok)}, saved in {folder} ({weights})",
        flush=True,
    )
    return {
        "model_uri": str(folder),
        "framework": "llm",
        "parameters": size,
        "vocab_size": len(tok),
        "max_model_len": params.max_length,
    }


TEMPLATE = runtime.Template(
    name=NAME,
    group="llm",
    description="Make a tiny Llama-architecture model with random weights and a byte-level BPE "
    "tokenizer trained on given text, with a chat template, saved as a Hugging Face folder "
    "(safetensors): for smoke tests and demos where no model hub is reachable.",
    params=Params,
    run=run,
    resources={"cpu": 1},
    environment=runtime.LLM_ENVIRONMENT,
    outputs={
        "model_uri": "the Hugging Face model folder",
        "framework": "llm",
        "parameters": "how many weights the model has",
        "vocab_size": "the tokenizer's vocabulary",
        "max_model_len": "the longest sequence it takes",
    },
)

if __name__ == "__main__":
    TEMPLATE.main()
