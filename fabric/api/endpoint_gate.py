"""Who may call an endpoint, remembered for a few seconds per caller.

Checking a key or token costs database reads; an endpoint answering hundreds of calls a
second would spend more on them than on predicting. The services announce every change to
who may call what (a member removed, a token or key revoked, an endpoint changed) through
`fabric.services.tenancy.access_changes`, and the server subscribes `forget` there, so the
server where the change was made refuses at once; other servers on the database refuse at
most `FABRIC_ENDPOINT_AUTH_CACHE_SECONDS` later.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from sqlalchemy.orm import Session, sessionmaker
from starlette.concurrency import run_in_threadpool

from fabric.auth import secrets
from fabric.backends.base import ComputeBackend
from fabric.clock import Clock
from fabric.services.serving import keys as endpoint_keys
from fabric.services.serving.specs import EndpointKind

# Beyond this many remembered callers, start afresh rather than grow without bound.
MAX_PASSES = 10_000


@dataclass(frozen=True)
class Pass:
    """What a call needs once admitted: where Serve is, the endpoint's mirror, its kind and
    limits, and who calls (for an llm endpoint's usage)."""

    address: str
    mirror: str | None
    mirror_percent: float
    expires: float
    kind: str = EndpointKind.CLASSIC
    # The first version the endpoint serves: an llm endpoint's base model.
    model: str = ""
    version: int = 0
    project_id: int = 0
    caller: str = "anonymous"
    key_id: int | None = None
    key_name: str | None = None
    user_id: int | None = None
    requests_per_minute: int | None = None
    tokens_per_minute: int | None = None

    @property
    def llm(self) -> bool:
        return self.kind == EndpointKind.LLM

    @property
    def label(self) -> str:
        """MODEL@VERSION, as metrics and usage name an llm endpoint's base."""
        return f"{self.model}@{self.version}"


class EndpointGate:
    def __init__(
        self,
        sessions: sessionmaker[Session],
        clock: Clock,
        backend: ComputeBackend,
        ttl_seconds: float,
    ) -> None:
        self._sessions = sessions
        self._clock = clock
        self._backend = backend
        self._ttl = ttl_seconds
        self._passes: dict[tuple[str, str, str], Pass] = {}
        # Counts `forget` calls: a pass checked while one came is not remembered.
        self._generation = 0

    async def admit(self, project: str, endpoint: str, secret: str | None) -> Pass:
        """The call's pass; Unauthenticated or NotFound as `endpoint_keys.authorize` says."""
        key = (project, endpoint, secrets.digest(secret) if secret else "")
        known = self._passes.get(key)
        if known is not None and known.expires > time.monotonic():
            return known
        generation = self._generation
        issued = await run_in_threadpool(self._check, project, endpoint, secret)
        if self._ttl > 0 and generation == self._generation:
            if len(self._passes) >= MAX_PASSES:
                self._passes.clear()
            self._passes[key] = issued
        return issued

    def _check(self, project: str, endpoint: str, secret: str | None) -> Pass:
        with self._sessions() as session:
            caller = endpoint_keys.authorize(session, self._clock, project, endpoint, secret)
            spec = caller.endpoint.spec
            project_id = caller.endpoint.project_id
        mirror = spec.get("mirror")
        limit = spec.get("rate_limit") or {}
        served = spec["versions"][0]
        return Pass(
            address=self._backend.serve_address(project),
            mirror=f"{mirror['model']}@{mirror['version']}" if mirror else None,
            mirror_percent=mirror["percent"] if mirror else 0.0,
            expires=time.monotonic() + self._ttl,
            kind=spec.get("kind", EndpointKind.CLASSIC),
            model=served["model"],
            version=served["version"],
            project_id=project_id,
            caller=caller.identity,
            key_id=caller.key_id,
            key_name=caller.key_name,
            user_id=caller.user_id,
            requests_per_minute=limit.get("requests_per_minute"),
            tokens_per_minute=limit.get("tokens_per_minute"),
        )

    def forget(self) -> None:
        """Drop every remembered pass: keys, members or an endpoint's options changed.

        Called from whichever thread committed the change."""
        self._generation += 1
        self._passes.clear()
