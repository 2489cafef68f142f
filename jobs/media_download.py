"""`media-download`: fetch URLs into the run's storage, several at once, retrying what may
pass on a second try, with a manifest of what was fetched and what failed."""

from __future__ import annotations

import asyncio
import hashlib
import re
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import unquote, urlparse

from pydantic import BaseModel, Field

from fabric import runtime
from jobs import _media

NAME = "media-download"
MANIFEST_COLUMNS = ["url", "status", "path", "bytes", "sha256", "attempts", "error"]
# Answers worth asking again: the server was busy or briefly broken.
RETRY_STATUS = {408, 425, 429, 500, 502, 503, 504}
CHUNK = 1 << 16


class Params(BaseModel):
    urls: list[str] = Field(
        min_length=1, description="the http(s) URLs to fetch, each into a file of its own"
    )
    concurrency: int = Field(default=8, ge=1, le=64, description="downloads at once")
    retries: int = Field(
        default=3,
        ge=0,
        le=10,
        description="tries after the first when a URL times out, the connection fails, or the "
        "server answers 408, 429 or 5xx; other answers (e.g. 404) fail at once",
    )
    backoff: float = Field(
        default=1.0,
        ge=0,
        le=60,
        description="seconds before the first retry, doubling at each next one",
    )
    timeout: float = Field(
        default=60.0, gt=0, le=3600, description="seconds without progress before a try fails"
    )
    max_bytes: int = Field(
        default=2**30, ge=1, description="the largest file accepted; a larger one fails"
    )
    fail_on_error: bool = Field(
        default=True,
        description="end the job as failed when any URL failed (after writing the manifest); "
        "false: succeed with what could be fetched",
    )


class TooLarge(Exception):
    """The file is over max_bytes: trying again would not help."""


class Busy(Exception):
    """The server answered with a status worth trying again (busy, or briefly broken)."""


class Refused(Exception):
    """The server answered with a status that trying again would not change."""


def _file_name(index: int, url: str) -> str:
    base = PurePosixPath(unquote(urlparse(url).path)).name or "download"
    return f"{index:04d}-{re.sub(r'[^A-Za-z0-9_.-]+', '_', base)[-100:]}"


async def _fetch_once(client: Any, params: Params, url: str, target: Path) -> tuple[int, str]:
    """One try: stream the body into `target` (through a partial file); bytes and SHA-256."""
    partial = target.with_name(target.name + ".part")
    try:
        async with client.stream("GET", url) as response:
            if response.status_code >= 400:
                busy = response.status_code in RETRY_STATUS
                raise (Busy if busy else Refused)(f"HTTP {response.status_code}")
            declared = int(response.headers.get("content-length") or 0)
            if declared > params.max_bytes:
                raise TooLarge(f"{declared} bytes is over max_bytes ({params.max_bytes})")
            digest, size = hashlib.sha256(), 0
            with partial.open("wb") as handle:
                async for chunk in response.aiter_bytes(CHUNK):
                    size += len(chunk)
                    if size > params.max_bytes:
                        raise TooLarge(f"more than max_bytes ({params.max_bytes}) bytes")
                    digest.update(chunk)
                    handle.write(chunk)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    partial.replace(target)
    return size, digest.hexdigest()


async def _fetch(
    client: Any, params: Params, gate: asyncio.Semaphore, index: int, url: str, root: Path
) -> dict[str, Any]:
    """Fetch with retries and exponential backoff; the URL's manifest row either way."""
    import httpx

    target = root / _file_name(index, url)
    row: dict[str, Any] = {"url": url, "path": "", "bytes": 0, "sha256": "", "error": ""}
    attempt = 0
    async with gate:
        while True:
            attempt += 1
            try:
                size, digest = await _fetch_once(client, params, url, target)
            except (TooLarge, Refused) as exc:
                return {**row, "status": "failed", "attempts": attempt, "error": str(exc)}
            except (Busy, httpx.HTTPError) as exc:
                error = str(exc) or type(exc).__name__
                if attempt > params.retries:
                    return {**row, "status": "failed", "attempts": attempt, "error": error}
                delay = params.backoff * 2 ** (attempt - 1)
                print(f"{NAME}: {url}: {error}; try {attempt + 1} in {delay:g} s", flush=True)
                await asyncio.sleep(delay)
            else:
                print(f"{NAME}: {url}: {size} bytes", flush=True)
                row |= {"path": str(target), "bytes": size, "sha256": digest}
                return {**row, "status": "ok", "attempts": attempt}


async def _fetch_all(params: Params, root: Path) -> list[dict[str, Any]]:
    import httpx

    gate = asyncio.Semaphore(params.concurrency)
    limits = httpx.Limits(max_connections=params.concurrency)
    async with httpx.AsyncClient(
        timeout=params.timeout, follow_redirects=True, limits=limits
    ) as client:
        return await asyncio.gather(
            *(_fetch(client, params, gate, i, url, root) for i, url in enumerate(params.urls))
        )


def run(params: Params) -> dict[str, Any]:
    bad = [url for url in params.urls if urlparse(url).scheme not in ("http", "https")]
    if bad:
        raise SystemExit(f"{NAME}: only http(s) URLs can be fetched, not {', '.join(bad)}")
    root = runtime.run_dir() / "downloads"
    root.mkdir(parents=True, exist_ok=True)
    rows = asyncio.run(_fetch_all(params, root))
    manifest = _media.write_manifest(rows, MANIFEST_COLUMNS)
    fetched = [row for row in rows if row["status"] == "ok"]
    failed = {row["url"]: row["error"] for row in rows if row["status"] != "ok"}
    outputs = {
        "files": [row["path"] for row in fetched],
        "manifest_uri": str(manifest),
        "fetched": len(fetched),
        "failed": failed,
        "bytes": sum(row["bytes"] for row in fetched),
    }
    runtime.report_metrics(fetched=len(fetched), failed=len(failed), bytes=outputs["bytes"])
    if failed and params.fail_on_error:
        # The manifest and outputs stay, so what was fetched is not lost.
        runtime.write_outputs(**outputs)
        raise SystemExit(
            f"{NAME}: {len(failed)} of {len(rows)} URLs failed: "
            + "; ".join(f"{url}: {error}" for url, error in failed.items())
        )
    return outputs


TEMPLATE = runtime.Template(
    name=NAME,
    group="media",
    description="Download files from http(s) URLs into storage, several at once, with retries "
    "and exponential backoff, a size limit, and a manifest of what was fetched and what failed.",
    params=Params,
    run=run,
    resources={"cpu": 0.5},
    outputs={
        "files": "the files fetched, in the order of the URLs",
        "manifest_uri": "a Parquet table, a row per URL: url, status (ok or failed), path, "
        "bytes, sha256, attempts, error",
        "fetched": "how many URLs were fetched",
        "failed": "each URL that failed, with the reason",
        "bytes": "bytes fetched in all",
    },
)

if __name__ == "__main__":
    TEMPLATE.main()
