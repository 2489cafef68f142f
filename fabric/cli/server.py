"""`fabric server`: the API in the foreground, logging to stderr and FABRIC_HOME/logs."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from fabric.cli.settings import load_settings

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def _log_config(log_file: Path) -> dict[str, Any]:
    """Everything (Fabric's and uvicorn's loggers) to stderr and to a rotated file."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"plain": {"format": LOG_FORMAT}},
        "handlers": {
            "stderr": {
                "class": "logging.StreamHandler",
                "formatter": "plain",
                "stream": "ext://sys.stderr",
            },
            "file": {
                "class": "logging.handlers.RotatingFileHandler",
                "formatter": "plain",
                "filename": str(log_file),
                "maxBytes": 10 * 1024 * 1024,
                "backupCount": 5,
                "encoding": "utf-8",
            },
        },
        "root": {"handlers": ["stderr", "file"], "level": "INFO"},
    }


def serve(
    host: Annotated[str | None, typer.Option(help="Address to bind; default FABRIC_HOST.")] = None,
    port: Annotated[int | None, typer.Option(help="Port to bind; default FABRIC_PORT.")] = None,
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
        log_config=_log_config(settings.log_dir / "server.log"),
    )
