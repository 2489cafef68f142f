"""The storage root's layout: each user's, each project's and each run's folder."""

from __future__ import annotations

from pathlib import Path

from fabric.config import Settings


def user_dir(settings: Settings, username: str) -> Path:
    return settings.storage_root / "users" / username


def project_dir(settings: Settings, project: str) -> Path:
    return settings.storage_root / "projects" / project


def run_dir(settings: Settings, project: str, job_id: int) -> Path:
    return project_dir(settings, project) / "runs" / f"job-{job_id}"


def package_dir(settings: Settings, project: str) -> Path:
    return project_dir(settings, project) / "packages"
