"""Receiving a code package: streamed to disk with its size capped, never held in memory.

Both doors take packages: Fabric's own API (`fabric job submit --working-dir`) and the Ray
Jobs door (`ray job submit --working-dir`); this is their one way in.
"""

from __future__ import annotations

import anyio
from fastapi import Request
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from fabric.config import Settings
from fabric.errors import PayloadTooLarge
from fabric.services.jobs import packages
from fabric.services.tenancy.actor import Actor


async def receive_package(
    request: Request,
    session: Session,
    settings: Settings,
    actor: Actor,
    project: str,
    name: str,
) -> packages.Package:
    await run_in_threadpool(packages.check_upload, session, actor, project, name)
    limit = settings.max_package_mib * 2**20
    too_large = PayloadTooLarge(
        f"package {name!r} is larger than {settings.max_package_mib} MiB "
        "(FABRIC_MAX_PACKAGE_MIB); leave data and virtual environments out of the working dir"
    )
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise too_large
    received = packages.incoming_file(settings, project)
    try:
        size = 0
        async with await anyio.open_file(received, "wb") as handle:
            async for chunk in request.stream():
                size += len(chunk)
                if size > limit:
                    raise too_large
                await handle.write(chunk)
        return await run_in_threadpool(
            packages.store, session, settings, actor, project, name, received
        )
    finally:
        received.unlink(missing_ok=True)
