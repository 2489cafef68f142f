"""LLM serving: output tokens/s, time to first token and inter-token latency of the same tiny
model and engine options behind a Fabric llm endpoint and behind vLLM's own OpenAI server.

(a) `fabric`: the `llm-tiny` model registered and served by an llm endpoint (Ray Serve's LLM
    app on vLLM, in the LLM environment) on a throw-away embedded default (`fabric up` in a
    temporary FABRIC_HOME, on free ports), called through the server's door with a key;
(b) `serve`: the same Serve application called on Serve's own port, no Fabric in front (what
    the door costs is the difference);
(c) `vllm`: `python -m vllm.entrypoints.openai.api_server` on the same folder with the same
    engine options (`--enforce-eager`, `--max-model-len`, `--dtype`, a 1 GiB KV cache).
Both run at once on the same cores; the load takes turns between them, `--rounds` times at
each concurrency (1 and 8 by default), and the report gives each one's median.

The load: streamed chat completions with a fixed prompt and exactly `--output-tokens` tokens
each (`ignore_eos`, a vLLM extension both accept), `--requests` per round, from concurrent
async clients (httpx). TTFT is from sending to the first chunk with a token; inter-token
latency is between chunks (one token each: Fabric sends chunks as they come); tokens/s is
the completion tokens the engine reports (`stream_options.include_usage`) over the round's
wall time.

    .venv/bin/python -m benchmarks.llm_throughput [--rounds 2] [--requests 16]
        [--output-tokens 64] [--concurrency 1 8]

Prints one JSON line on stdout; progress goes to stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from benchmarks.serve_throughput import _free_port, _ok, platform, say
from fabric.config import Settings

ROOT = Path(__file__).resolve().parents[1]
PROJECT = "bench"
MAX_MODEL_LEN = 512
DTYPE = "float32"
PROMPT = [{"role": "user", "content": "Tell me everything about Ray, jobs and pipelines."}]
START_TIMEOUT_S = 600.0


def llm_python() -> Path:
    python = Settings().llm_executable
    if python is None or not python.exists():
        raise SystemExit("the LLM environment (.venv-llm) is missing: run `make install`")
    return python


def tiny_model(folder: Path) -> Path:
    """The `llm-tiny` template's model, made in the LLM environment."""
    made = subprocess.run(
        [str(llm_python()), "-m", "jobs.llm_tiny"],
        cwd=ROOT,
        env={**os.environ, "FABRIC_RUN_DIR": str(folder), "HF_HUB_OFFLINE": "1"},
        capture_output=True,
        text=True,
    )
    if made.returncode != 0:
        raise SystemExit(f"llm-tiny failed: {made.stderr[-2000:]}")
    return folder / "model"


def fabric_endpoint(bench: dict[str, Any], model: Path) -> tuple[str, str]:
    """The model registered, served by an llm endpoint, and a key; its OpenAI base URL."""
    headers = {"Authorization": f"Bearer {bench['token']}"}
    base = f"/api/v1/projects/{PROJECT}"
    with httpx.Client(base_url=bench["url"], headers=headers, timeout=120) as client:
        _ok(client.post("/api/v1/projects", json={"name": PROJECT}))
        incoming = Path(bench["storage"]) / "projects" / PROJECT / "incoming" / "tiny"
        incoming.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run(["cp", "-r", str(model), str(incoming)], check=True)
        _ok(
            client.post(
                f"{base}/models/tiny/versions",
                json={"source": "incoming/tiny", "framework": "llm"},
            )
        )
        spec = {
            "kind": "llm",
            "versions": [{"model": "tiny"}],
            "cpu": 0.5,
            "engine": {"max_model_len": MAX_MODEL_LEN, "dtype": DTYPE, "max_num_seqs": 16},
        }
        _ok(client.put(f"{base}/endpoints/chat", json=spec))
        key = _ok(client.post(f"{base}/endpoints/chat/keys", json={"name": "bench"})).json()
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            endpoint = _ok(client.get(f"{base}/endpoints/chat")).json()
            if endpoint["status"] == "RUNNING":
                break
            if endpoint["status"] == "DEPLOY_FAILED" or time.monotonic() > deadline:
                raise RuntimeError(f"endpoint chat: {endpoint['status']} {endpoint['message']}")
            time.sleep(1)
    return f"{bench['url']}/serve/{PROJECT}/chat/v1", key["key"]


@contextmanager
def vllm_server(model: Path, log: Path) -> Iterator[str]:
    """vLLM's own OpenAI server on the folder, with the endpoint's engine options."""
    port = _free_port()
    command = [
        str(llm_python()),
        "-m",
        "vllm.entrypoints.openai.api_server",
        "--model",
        str(model),
        "--served-model-name",
        "tiny",
        "--enforce-eager",
        "--max-model-len",
        str(MAX_MODEL_LEN),
        "--dtype",
        DTYPE,
        "--max-num-seqs",
        "16",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
    ]
    env = {**os.environ, "VLLM_CPU_KVCACHE_SPACE": "1", "HF_HUB_OFFLINE": "1"}
    with log.open("w") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            try:
                if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"vLLM's server did not start: {log.read_text()[-2000:]}")
            time.sleep(1)
        yield f"{url}/v1"
    finally:
        process.terminate()
        process.wait(timeout=60)


async def _one(client: httpx.AsyncClient, url: str, key: str, tokens: int) -> dict[str, Any]:
    body = {
        "model": "tiny",
        "messages": PROMPT,
        "max_tokens": tokens,
        "ignore_eos": True,
        "temperature": 0,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    sent = time.perf_counter()
    first, last, gaps, completion = None, None, [], 0
    headers = {"Authorization": f"Bearer {key}"}
    async with client.stream("POST", f"{url}/chat/completions", json=body, headers=headers) as got:
        got.raise_for_status()
        async for line in got.aiter_lines():
            if not line.startswith("data:") or line.strip() == "data: [DONE]":
                continue
            chunk = json.loads(line[5:])
            now = time.perf_counter()
            if chunk.get("choices"):
                if first is None:
                    first = now - sent
                elif last is not None:
                    gaps.append(now - last)
                last = now
            if chunk.get("usage"):
                completion = chunk["usage"]["completion_tokens"]
    return {"ttft": first, "gaps": gaps, "tokens": completion}


async def _round(url: str, key: str, concurrency: int, requests: int, tokens: int) -> dict:
    queue: asyncio.Queue[int] = asyncio.Queue()
    for number in range(requests):
        queue.put_nowait(number)
    results: list[dict[str, Any]] = []
    limits = httpx.Limits(max_connections=concurrency)

    async with httpx.AsyncClient(timeout=300, limits=limits) as client:

        async def worker() -> None:
            while not queue.empty():
                queue.get_nowait()
                results.append(await _one(client, url, key, tokens))

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        wall = time.perf_counter() - started
    ttfts = sorted(r["ttft"] for r in results if r["ttft"] is not None)
    gaps = sorted(gap for r in results for gap in r["gaps"])
    return {
        "tokens_per_s": sum(r["tokens"] for r in results) / wall,
        "ttft_p50_ms": 1000 * _quantile(ttfts, 0.5),
        "ttft_p99_ms": 1000 * _quantile(ttfts, 0.99),
        "itl_p50_ms": 1000 * _quantile(gaps, 0.5),
        "itl_p99_ms": 1000 * _quantile(gaps, 0.99),
    }


def _quantile(values: list[float], q: float) -> float:
    return values[min(len(values) - 1, int(q * len(values)))] if values else float("nan")


def _median(rounds: list[dict[str, float]]) -> dict[str, float]:
    return {k: round(statistics.median(r[k] for r in rounds), 2) for k in rounds[0]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--requests", type=int, default=16)
    parser.add_argument("--output-tokens", type=int, default=64)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 8])
    args = parser.parse_args()
    scratch = Path(tempfile.mkdtemp(prefix="flt-", dir="/tmp"))
    say("making the tiny model")
    model = tiny_model(scratch / "tiny-run")
    with platform("proxy") as bench:
        say("deploying the llm endpoint")
        fabric_url, key = fabric_endpoint(bench, model)
        say("starting vLLM's own server")
        with vllm_server(model, scratch / "vllm.log") as vllm_url:
            serve_url = f"{bench['serve_url']}/serve/{PROJECT}/chat/v1"
            targets = {
                "fabric": (fabric_url, key),
                "serve": (serve_url, "none"),
                "vllm": (vllm_url, "none"),
            }
            for url, secret in targets.values():  # warm both: first calls compile nothing
                asyncio.run(_round(url, secret, 1, 2, 8))
            report: dict[str, Any] = {"benchmark": "llm_throughput", "args": vars(args)}
            for concurrency in args.concurrency:
                seen: dict[str, list[dict[str, float]]] = {name: [] for name in targets}
                for number in range(args.rounds):
                    for name, (url, secret) in targets.items():
                        figures = asyncio.run(
                            _round(url, secret, concurrency, args.requests, args.output_tokens)
                        )
                        seen[name].append(figures)
                        say(f"c={concurrency} round {number + 1} {name}: {figures}")
                fabric, vllm = _median(seen["fabric"]), _median(seen["vllm"])
                report[f"c{concurrency}"] = {
                    "fabric": fabric,
                    "serve": _median(seen["serve"]),
                    "vllm": vllm,
                    "tokens_per_s_ratio": round(fabric["tokens_per_s"] / vllm["tokens_per_s"], 3),
                    "ttft_p50_delta_ms": round(fabric["ttft_p50_ms"] - vllm["ttft_p50_ms"], 2),
                    "itl_p50_ratio": round(fabric["itl_p50_ms"] / vllm["itl_p50_ms"], 3),
                }
    print(json.dumps(report))


if __name__ == "__main__":
    sys.exit(main())
