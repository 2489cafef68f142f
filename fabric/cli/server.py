"""`fabric server`: the API in the foreground, logging to stderr and FABRIC_HOME/logs."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from fabric.cli.settings import load_settings
from fabric.config import Settings

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
# They log each request the server makes (the reconciler asks Ray several times a second)
# at INFO; their warnings and errors still show.
QUIET_LOGGERS = ("httpx", "httpcore")


def log_config(settings: Settings, to_stderr: bool = True) -> dict[str, Any]:
    """Fabric's and uvicorn's loggers to the rotated FABRIC_HOME/logs/server.log, and to
    stderr unless `to_stderr` is off (`fabric up`: there stderr is kept for what escapes
    logging, and the same lines would be written twice)."""
    handlers: dict[str, dict[str, Any]] = {
        "file": {
            "class": "logging.handlers.RotatingFileHandler",
            "formatter": "plain",
            "filename": str(settings.server_log),
            "maxBytes": settings.log_max_mib * 2**20,
            "backupCount": settings.log_backups,
            "encoding": "utf-8",
        },
    }
    if to_stderr:
        handlers["stderr"] = {
            "class": "logging.StreamHandler",
            "formatter": "plain",
            "stream": "ext://sys.stderr",
        }
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"plain": {"format": LOG_FORMAT}},
        "handlers": handlers,
        "loggers": {name: {"level": "WARNING"} for name in QUIET_LOGGERS},
        "root": {"handlers": list(handlers), "level": "INFO"},
    }


def serve(
    host: Annotated[str | None, typer.Option(help="Address to bind; default FABRIC_HOST.")] = None,
    port: Annotated[int | None, typer.Option(help="Port to bind; default FABRIC_PORT.")] = None,
    log_to_stderr: Annotated[
        bool,
        typer.Option(
            help="Log to stderr as well as to FABRIC_HOME/logs/server.log (`fabric up` turns "
            "it off: its server.out keeps only what escapes logging, such as a crash)."
        ),
    ] = True,
) -> None:
    """Run the Fabric API server until interrupted; it migrates the database at start."""
    # Imported here, not at the top: every other command would pay a second to load the server.
    import uvicorn

    from fabric.api.app import KEEP_ALIVE_SECONDS, create_app

    overrides = {key: value for key, value in (("host", host), ("port", port)) if value is not None}
    settings = load_settings(**overrides)
    settings.log_dir.mkdir(parents=True, exist_ok=True)
    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        timeout_keep_alive=KEEP_ALIVE_SECONDS,
        log_config=log_config(settings, to_stderr=log_to_stderr),
        access_log=settings.access_log,
    )
