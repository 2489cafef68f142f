"""Code packages (zipped working directories) of a project, kept in the project's storage.

Ray keeps uploaded packages in its head's key-value store under a name taken from their
content, shared by every project on that head and pruned when no job holds them. Fabric keeps
each project's packages in the project's own folder instead, and hands a package to the
cluster under a project-scoped name only when a job of that project starts. So a project can
neither run nor overwrite another project's code, and a job that waited in the queue for an
hour still finds its package.
"""

from __future__ import annotations

import os
import re
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from sqlalchemy.orm import Session

from fabric import storage
from fabric.config import Settings
from fabric.errors import InvalidSpec, NotFound
from fabric.services.tenancy import audit, projects
from fabric.services.tenancy.actor import Actor
from fabric.services.tenancy.roles import Role

NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,199}\.zip$")
# Where a job's code may come from besides the project's packages: storage the cluster
# fetches by itself. Local paths and file:// would name folders on the cluster's machines.
REMOTE_SCHEMES = {"https", "s3", "gs", "azure", "abfss"}
PACKAGE_SCHEME = "gcs"
UPLOAD_HINT = "upload it with `fabric job submit --working-dir DIR` or `ray job submit`"


@dataclass(frozen=True)
class Package:
    name: str
    size_bytes: int
    path: Path


def check_name(name: str) -> None:
    if not NAME.match(name):
        raise InvalidSpec(f"package name {name!r}: letters, digits, '_', '.', '-', ending in .zip")


def incoming_file(settings: Settings, project: str) -> Path:
    """A fresh file to receive an upload in, beside the packages so that storing is a rename."""
    folder = storage.package_dir(settings, project)
    folder.mkdir(parents=True, exist_ok=True)
    fd, path = tempfile.mkstemp(dir=folder, prefix=".incoming-", suffix=".part")
    os.close(fd)
    return Path(path)


def check_upload(session: Session, actor: Actor, project_name: str, name: str) -> None:
    """Refuse an upload before its body is read: members upload, under a valid name."""
    projects.get_for(session, actor, project_name, Role.MEMBER)
    check_name(name)


def store(
    session: Session,
    settings: Settings,
    actor: Actor,
    project_name: str,
    name: str,
    received: Path,
) -> Package:
    """Keep a received upload as the project's package `name`; the received file is consumed."""
    try:
        check_upload(session, actor, project_name, name)
        if not zipfile.is_zipfile(received):
            raise InvalidSpec(f"package {name!r} is not a zip archive")
        path = storage.package_dir(settings, project_name) / name
        os.replace(received, path)
    finally:
        received.unlink(missing_ok=True)
    size = path.stat().st_size
    audit.record(
        session,
        actor,
        "package.upload",
        "package",
        name,
        project=project_name,
        detail={"bytes": size},
    )
    session.commit()
    return Package(name, size, path)


def get(
    session: Session, settings: Settings, actor: Actor, project_name: str, name: str
) -> Package:
    projects.get_for(session, actor, project_name)
    check_name(name)
    path = storage.package_dir(settings, project_name) / name
    if not path.is_file():
        raise NotFound(f"package {name!r} not found in project {project_name!r}")
    return Package(name, path.stat().st_size, path)


def _sources(runtime_env: dict[str, Any]) -> list[str]:
    working_dir = runtime_env.get("working_dir")
    modules = runtime_env.get("py_modules") or []
    if working_dir is not None and not isinstance(working_dir, str):
        raise InvalidSpec("runtime_env.working_dir must be a URI string")
    if not isinstance(modules, list) or not all(isinstance(m, str) for m in modules):
        raise InvalidSpec("runtime_env.py_modules must be a list of URI strings")
    return ([working_dir] if working_dir else []) + modules


def _package_name(uri: str) -> str | None:
    """The package a `gcs://NAME` URI names; None for remote storage."""
    parsed = urlparse(uri)
    if parsed.scheme in REMOTE_SCHEMES:
        return None
    if parsed.scheme != PACKAGE_SCHEME or parsed.path or not NAME.match(parsed.netloc):
        raise InvalidSpec(
            f"runtime_env: {uri!r} is not a package of this project or a remote URI "
            f"({', '.join(sorted(REMOTE_SCHEMES))}); {UPLOAD_HINT}"
        )
    return parsed.netloc


def check_sources(settings: Settings, project_name: str, runtime_env: dict[str, Any]) -> None:
    """Each code source of a job is one of its project's packages or remote storage."""
    for uri in _sources(runtime_env):
        name = _package_name(uri)
        if name and not (storage.package_dir(settings, project_name) / name).is_file():
            raise InvalidSpec(
                f"runtime_env: package {name!r} was not uploaded to project "
                f"{project_name!r}; {UPLOAD_HINT}"
            )


def for_cluster(
    settings: Settings, project_name: str, runtime_env: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, Path]]:
    """The runtime env as the cluster sees it, and the packages it needs (URI → file).

    The project's packages get the project's name in front, so two projects that upload the
    same content-named package to one head never share or replace each other's copy.
    """
    needed: dict[str, Path] = {}

    def scoped(uri: str) -> str:
        name = _package_name(uri)
        if name is None:
            return uri
        path = storage.package_dir(settings, project_name) / name
        if not path.is_file():
            raise NotFound(f"package {name!r} is gone from project {project_name!r}")
        cluster_uri = f"{PACKAGE_SCHEME}://fabric_{project_name}_{name}"
        needed[cluster_uri] = path
        return cluster_uri

    result = dict(runtime_env)
    if runtime_env.get("working_dir"):
        result["working_dir"] = scoped(runtime_env["working_dir"])
    if runtime_env.get("py_modules"):
        result["py_modules"] = [scoped(uri) for uri in runtime_env["py_modules"]]
    return result, needed
