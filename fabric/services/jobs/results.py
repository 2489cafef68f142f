"""What a job left in its run folder: the outputs manifest, the metrics it reported, files.

Templates write these through `fabric.runtime`; pipelines, the CLI and the UI read them here,
as members of the job's project. Hidden files (the job's token among them) are never served.
"""

from __future__ import annotations

import csv
import itertools
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from fabric import runtime, storage
from fabric.config import Settings
from fabric.errors import NotFound
from fabric.services.jobs import jobs
from fabric.services.tenancy.actor import Actor


@dataclass(frozen=True)
class Results:
    outputs: dict[str, Any]
    metrics: list[dict[str, Any]]


def _run_dir(session: Session, settings: Settings, actor: Actor, project: str, job_id: int) -> Path:
    job = jobs.get(session, actor, project, job_id)
    return storage.run_dir(settings, project, job.id)


def results(
    session: Session, settings: Settings, actor: Actor, project: str, job_id: int
) -> Results:
    """The job's outputs and metrics so far; both empty before it wrote any."""
    folder = _run_dir(session, settings, actor, project, job_id)
    return Results(runtime.read_outputs(folder), runtime.read_metrics(folder))


def file(
    session: Session, settings: Settings, actor: Actor, project: str, job_id: int, path: str
) -> Path:
    """A file of the job's run folder by its relative path (e.g. an image an output names)."""
    folder = _run_dir(session, settings, actor, project, job_id).resolve()
    parts = Path(path).parts
    found = (folder / path).resolve()
    if (
        not parts
        or any(part.startswith(".") for part in parts)
        or not found.is_relative_to(folder)
        or not found.is_file()
    ):
        raise NotFound(f"job {job_id} has no file {path!r}")
    return found


PREVIEW_ROWS = 20


def present(
    settings: Settings, project: str, job_id: int, outputs: dict[str, Any]
) -> dict[str, Any]:
    """What a page or the CLI shows of a job's outputs: its metrics, a preview of each CSV
    table, its images and any ECharts options, with the address that serves each file.

    Only files inside the job's run folder are served (`file` above); others are left out
    here and stay named in the outputs themselves.
    """
    folder = storage.run_dir(settings, project, job_id).resolve()
    base = f"/api/v1/projects/{project}/jobs/{job_id}/files/"

    def served(path: object) -> str | None:
        found = Path(str(path)).resolve()
        if not found.is_relative_to(folder) or not found.is_file():
            return None
        relative = found.relative_to(folder)
        return None if any(part.startswith(".") for part in relative.parts) else str(relative)

    tables: dict[str, Any] = {}
    for name, path in (outputs.get("tables") or {}).items():
        relative = served(path)
        if relative is not None:
            tables[name] = {"url": base + relative, **_preview(folder / relative)}
    images = [
        {"name": Path(relative).name, "url": base + relative}
        for relative in map(served, outputs.get("images") or [])
        if relative is not None
    ]
    charts = {
        name: option
        for name, option in (outputs.get("charts") or {}).items()
        if isinstance(option, dict)
    }
    metrics = outputs.get("metrics")
    return {
        "metrics": metrics if isinstance(metrics, dict) else {},
        "tables": tables,
        "images": images,
        "charts": charts,
    }


def _preview(path: Path) -> dict[str, Any]:
    """The first rows of a CSV file, for a glance; other files get none."""
    if path.suffix.lower() != ".csv":
        return {}
    with path.open(newline="", errors="replace") as handle:
        rows = list(itertools.islice(csv.reader(handle), PREVIEW_ROWS + 1))
    return {"columns": rows[0] if rows else [], "rows": rows[1:]}
