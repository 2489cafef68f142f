"""Settings read from the environment (prefix `FABRIC_`), in one place with their checks."""

from __future__ import annotations

import ipaddress
from datetime import timedelta
from functools import cached_property
from pathlib import Path
from typing import Literal
from urllib.parse import urlparse

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="FABRIC_", extra="ignore")

    home: Path = Field(default_factory=lambda: Path.home() / ".fabric")
    database_url: str | None = None
    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=1, le=65535)
    # The server's log, FABRIC_HOME/logs/server.log, is rotated once it reaches this size,
    # with this many old files kept (server.log.1, ...); Python's rotation needs at least one.
    log_max_mib: int = Field(default=10, gt=0)
    log_backups: int = Field(default=5, ge=1)
    # A line per HTTP request (uvicorn's access log). Off by default: the audit trail records
    # every change and who made it, endpoint calls are counted by their metrics, and at an
    # endpoint's rate of calls these lines would be most of the log.
    access_log: bool = False
    # The Python of the LLM environment (vLLM, transformers, peft), which vLLM's pins keep
    # apart from the server's: templates declared to run there (`Template.environment`) get it
    # as their Ray Job's `runtime_env.py_executable`. Unset: `.venv-llm/bin/python` of this
    # checkout, which `make install` builds, where it exists (`llm_executable`).
    llm_python: Path | None = None

    admin_user: str = "admin"
    admin_password: SecretStr | None = None
    password_min_length: int = Field(default=12, ge=8)

    session_ttl_seconds: int = Field(default=12 * 3600, gt=0)
    api_token_max_days: int = Field(default=365, gt=0)
    api_token_default_days: int = Field(default=90, gt=0)

    login_max_failures: int = Field(default=5, gt=0)
    login_client_max_failures: int = Field(default=20, gt=0)
    login_window_seconds: int = Field(default=300, gt=0)

    # One kept connection per server worker thread (40): overflow connections are closed on
    # return, and reopening them costs more than the request itself.
    db_pool_size: int = Field(default=40, gt=0)
    db_max_overflow: int = Field(default=10, ge=0)

    # The local Ray head of the embedded default. Ports sit off Ray's defaults and outside its
    # worker-port range (10002-19999), so a user's own Ray on this machine does not collide.
    ray_gcs_port: int = Field(default=26379, ge=1, le=65535)
    ray_dashboard_port: int = Field(default=28265, ge=1, le=65535)
    ray_client_port: int = Field(default=20001, ge=1, le=65535)
    ray_dashboard_agent_port: int = Field(default=20002, ge=1, le=65535)
    # Serve's HTTP ingress on the head (loopback only; callers come through the server).
    ray_serve_port: int = Field(default=28000, ge=1, le=65535)
    ray_num_cpus: float | None = Field(default=None, gt=0)
    ray_object_store_gib: float | None = Field(default=None, gt=0)
    ray_start_timeout_seconds: float = Field(default=90, gt=0)
    # The head's token and session files; FABRIC_HOME/ray unless set (servers may share a head).
    ray_folder: Path | None = None

    # How often the server follows running jobs on Ray, and starts queued ones.
    sync_interval_seconds: float = Field(default=0.2, gt=0)
    # The warm task runner (light pipeline tasks) exits after this long without work, and
    # starts again with the next task.
    warm_runner_idle_seconds: float = Field(default=600.0, gt=0)
    # Where projects' Ray clusters run: the local head, or one KubeRay cluster per project
    # described by a cluster config (cluster_configs/).
    backend: Literal["local", "kuberay"] = "local"
    cluster_config: Path | None = None
    kubeconfig: Path | None = None
    kuberay_namespace_prefix: str = Field(default="fabric-", pattern=r"^[a-z0-9][-a-z0-9]{0,14}$")
    # The namespace of the server's own pods: the only ones a project's Ray head admits.
    kuberay_server_namespace: str = "fabric"
    # Where jobs on the clusters reach the server; default its Service in that namespace.
    kuberay_server_url: str | None = None
    kuberay_ready_timeout_seconds: float = Field(default=900.0, gt=0)
    kuberay_idle_seconds: float = Field(default=3600.0, gt=0)
    # How often the reconciler checks Serve against the endpoints (schedules, restarts,
    # failed deploys).
    serve_sync_seconds: float = Field(default=5.0, gt=0)
    # How long an endpoint call's authorisation is remembered: a revoked key or a removed
    # member is refused at most this much later.
    endpoint_auth_cache_seconds: float = Field(default=5.0, ge=0)
    # How often an admitted job asks again whether its project's cluster is up.
    cluster_poll_seconds: float = Field(default=5.0, gt=0)
    # One server at a time reconciles a database: it holds a lease that each pass renews. A
    # server that dies hands over to another after this long; unset, 20 passes but at least
    # 10 s. It must also exceed the clock skew between servers.
    reconciler_lease_seconds: float | None = Field(default=None, gt=0)
    # A failed attempt with retries left waits base * 2^(attempt-1) seconds, at most the cap.
    job_retry_backoff_seconds: float = Field(default=1.0, ge=0)
    job_retry_backoff_max_seconds: float = Field(default=60.0, ge=0)
    # An admitted job still unsubmitted this long after it was created lost its request (the
    # server died before calling Ray), and the reconciler submits it. It must exceed the
    # longest submit a live request can make (Ray's client allows 30 s per call).
    job_submit_grace_seconds: float = Field(default=120.0, gt=0)
    # The largest code package (a zipped working directory) a project may upload.
    max_package_mib: int = Field(default=256, gt=0)
    # Cost per resource-hour for usage reports, e.g. {"gpu": 2.5, "cpu": 0.05}.
    rates: dict[str, float] = Field(default_factory=dict)

    # Remote-user SSO: a reverse proxy that authenticated the user names them in this header.
    # The header is honoured only from the listed proxy addresses, never from anyone else.
    remote_user_header: str | None = None
    trusted_proxies: list[str] = Field(default_factory=list)
    remote_user_autocreate: bool = False

    oidc_issuer: str | None = None
    oidc_client_id: str | None = None
    oidc_client_secret: SecretStr | None = None
    oidc_redirect_uri: str | None = None

    @field_validator("trusted_proxies")
    @classmethod
    def _networks(cls, value: list[str]) -> list[str]:
        for item in value:
            try:
                ipaddress.ip_network(item, strict=False)
            except ValueError as exc:
                raise ValueError(
                    f"FABRIC_TRUSTED_PROXIES: {item!r} is not an IP address or CIDR"
                ) from exc
        return value

    @field_validator("llm_python")
    @classmethod
    def _absolute(cls, value: Path | None) -> Path | None:
        if value is not None and not value.is_absolute():
            raise ValueError(
                f"FABRIC_LLM_PYTHON: {value} is not an absolute path; Ray starts it on the "
                "cluster's nodes, wherever a job runs"
            )
        return value

    @model_validator(mode="after")
    def _check(self) -> Settings:
        if self.api_token_default_days > self.api_token_max_days:
            raise ValueError(
                "FABRIC_API_TOKEN_DEFAULT_DAYS must not exceed FABRIC_API_TOKEN_MAX_DAYS"
            )
        if self.remote_user_header and not self.trusted_proxies:
            raise ValueError(
                "FABRIC_REMOTE_USER_HEADER needs FABRIC_TRUSTED_PROXIES: without it anyone could "
                "name themselves in the header"
            )
        if self.reconciler_lease.total_seconds() <= 2 * self.sync_interval_seconds:
            raise ValueError(
                "FABRIC_RECONCILER_LEASE_SECONDS must exceed two FABRIC_SYNC_INTERVAL_SECONDS: "
                "a lease that lapses between passes would pass from server to server"
            )
        if self.backend == "kuberay" and self.cluster_config is None:
            raise ValueError(
                "FABRIC_BACKEND=kuberay needs FABRIC_CLUSTER_CONFIG: the path of a cluster "
                "config such as cluster_configs/gpu-pool.yaml"
            )
        self._check_oidc()
        return self

    def _check_oidc(self) -> None:
        fields = {
            "FABRIC_OIDC_ISSUER": self.oidc_issuer,
            "FABRIC_OIDC_CLIENT_ID": self.oidc_client_id,
            "FABRIC_OIDC_CLIENT_SECRET": self.oidc_client_secret,
            "FABRIC_OIDC_REDIRECT_URI": self.oidc_redirect_uri,
        }
        given = [name for name, value in fields.items() if value]
        if not given:
            return
        missing = [name for name, value in fields.items() if not value]
        if missing:
            raise ValueError(f"OIDC is half configured: set {', '.join(missing)} as well")
        for name in ("FABRIC_OIDC_ISSUER", "FABRIC_OIDC_REDIRECT_URI"):
            url = urlparse(str(fields[name]))
            local = url.hostname in ("localhost", "127.0.0.1")
            if url.scheme != "https" and not (url.scheme == "http" and local):
                raise ValueError(f"{name} must be an https URL (http only for localhost)")
            if not url.hostname:
                raise ValueError(f"{name} must be an absolute URL with a host")

    @property
    def oidc_enabled(self) -> bool:
        return bool(self.oidc_issuer)

    @cached_property
    def trusted_networks(self) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
        return [ipaddress.ip_network(item, strict=False) for item in self.trusted_proxies]

    @property
    def reconciler_lease(self) -> timedelta:
        seconds = self.reconciler_lease_seconds or max(10.0, 20 * self.sync_interval_seconds)
        return timedelta(seconds=seconds)

    @property
    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.home / 'fabric.db'}"

    @property
    def local_url(self) -> str:
        """Where this machine reaches the server (one bound to every interface, on loopback)."""
        host = "127.0.0.1" if self.host in ("0.0.0.0", "::") else self.host
        if ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{self.port}"

    @property
    def storage_root(self) -> Path:
        return self.home / "storage"

    @property
    def log_dir(self) -> Path:
        return self.home / "logs"

    @property
    def ray_dir(self) -> Path:
        return self.ray_folder or self.home / "ray"

    @property
    def server_log(self) -> Path:
        """The server's own log (rotated); `server.out` beside it holds what escapes logging."""
        return self.log_dir / "server.log"

    @property
    def llm_executable(self) -> Path | None:
        """The LLM environment's Python: the setting's, else the checkout's `.venv-llm` where
        it was built, else None (not installed). Not resolved: a venv's `bin/python` is a link
        to the base interpreter, and only the link's path makes Python use the venv."""
        if self.llm_python is not None:
            return self.llm_python
        built = Path(__file__).resolve().parent.parent / ".venv-llm" / "bin" / "python"
        return built if built.exists() else None

    @property
    def server_pid_file(self) -> Path:
        return self.home / "server.pid"

    @property
    def initial_password_file(self) -> Path:
        return self.home / "initial_admin_password"
