"""The FastAPI application: migrations and the first admin at start, then the routers."""

from __future__ import annotations

import logging
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
from fastapi import FastAPI

from fabric import __version__
from fabric.api import errors
from fabric.api.endpoint_gate import EndpointGate
from fabric.api.endpoint_metrics import EndpointMetrics
from fabric.api.llm_door import LlmDoor
from fabric.api.rate_limits import RateLimiter
from fabric.api.routers import (
    audit,
    auth,
    dashboard,
    endpoints,
    health,
    jobs,
    metrics,
    models,
    packages,
    pipelines,
    pools,
    projects,
    quotas,
    ray_door,
    serve_door,
    templates,
    tokens,
    users,
)
from fabric.backends.base import ComputeBackend
from fabric.backends.choice import make_backend
from fabric.background.reconciler import Reconciler
from fabric.clock import Clock
from fabric.config import Settings
from fabric.db import migrate
from fabric.db.engine import make_engine, make_sessionmaker
from fabric.services.tenancy import access_changes
from fabric.services.tenancy import projects as project_service
from fabric.services.tenancy import users as user_service

log = logging.getLogger("fabric.server")

# How long the server keeps an idle connection open. It must outlast the clients' own idle
# limit (httpx drops a pooled connection after 5 s): with equal limits, a client that reuses a
# connection just as the server closes it gets "connection reset" on a busy machine.
KEEP_ALIVE_SECONDS = 75


def _announce_password(settings: Settings, password: str) -> None:
    """Show a generated first password once: on the console and in a file only root can read.

    It goes to stdout, not to the log, so that it never lands in log files or collectors.
    """
    path = settings.initial_password_file
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(password + "\n")
    print(
        f"Created admin user {settings.admin_user!r} with the one-time password: {password}\n"
        f"(also in {path}, mode 0600; change it with `fabric user passwd`)",
        flush=True,
    )


def create_app(
    settings: Settings | None = None,
    clock: Clock | None = None,
    backend: ComputeBackend | None = None,
) -> FastAPI:
    settings = settings or Settings()
    clock = clock or Clock()
    engine = make_engine(settings)
    sessions = make_sessionmaker(engine)

    def members(project: str) -> list[str]:
        with sessions() as session:
            return project_service.member_names(session, project)

    backend = backend or make_backend(settings, members)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        settings.home.mkdir(parents=True, exist_ok=True)
        migrate.upgrade(engine)
        with app.state.sessionmaker() as session:
            generated = user_service.ensure_admin(session, settings, clock)
        if generated:
            _announce_password(settings, generated)
        # Before the reconciler starts: its rollbacks change endpoints too.
        stop_forgetting = access_changes.subscribe(app.state.gate.forget)
        reconciler = Reconciler(app.state.sessionmaker, settings, backend, clock)
        reconciler.start()
        app.state.proxy = httpx.AsyncClient(timeout=httpx.Timeout(60, connect=5))
        log.info("fabric %s ready on database %s", __version__, engine.url.render_as_string())
        yield
        stop_forgetting()
        await app.state.proxy.aclose()
        reconciler.stop()
        engine.dispose()

    app = FastAPI(title="Fabric", version=__version__, lifespan=lifespan)
    app.state.settings = settings
    app.state.clock = clock
    app.state.engine = engine
    app.state.backend = backend
    app.state.sessionmaker = sessions
    app.state.gate = EndpointGate(sessions, clock, backend, settings.endpoint_auth_cache_seconds)
    app.state.endpoint_metrics = EndpointMetrics()
    app.state.rate_limiter = RateLimiter()
    app.state.llm_door = LlmDoor(
        app.state.endpoint_metrics, app.state.rate_limiter, sessions, clock
    )
    errors.install(app)
    routers = (
        health,
        auth,
        users,
        tokens,
        projects,
        pools,
        quotas,
        templates,
        jobs,
        packages,
        pipelines,
        models,
        endpoints,
        audit,
        metrics,
    )
    for module in (*routers, ray_door, dashboard, serve_door):
        app.include_router(module.router)
    return app
