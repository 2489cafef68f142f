"""The Ray dashboard of a project's cluster, opened by its members through Fabric's login.

Ray's dashboard has no login of its own worth the name, and a browser cannot send a bearer
header when it loads a page. So a member asks Fabric for a link with a one-minute,
single-use ticket; the browser trades it for a cookie good for that project's dashboard
only, and every request behind it is checked against the project's members again.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from fabric.backends.base import ComputeBackend, Feature
from fabric.clock import Clock
from fabric.errors import InvalidSpec
from fabric.services.tenancy import audit, projects, tokens
from fabric.services.tenancy.actor import Actor

COOKIE_KIND = frozenset({"dashboard"})


def open_ticket(
    session: Session, backend: ComputeBackend, actor: Actor, project_name: str
) -> tokens.Issued:
    projects.get_for(session, actor, project_name)
    if Feature.DASHBOARD not in backend.features:
        raise InvalidSpec("this platform's compute backend has no Ray dashboard")
    issued = tokens.issue_ticket(session, actor, project_name)
    audit.record(session, actor, "dashboard.open", "project", project_name, project=project_name)
    session.commit()
    return issued


def cookie_viewer(
    session: Session, clock: Clock, client: str, project_name: str, secret: str
) -> Actor:
    """The member behind a dashboard cookie of this project; Unauthenticated or NotFound."""
    user = tokens.resolve(session, secret, clock, kinds=COOKIE_KIND, scope=project_name)
    actor = Actor(user, client, clock)
    projects.get_for(session, actor, project_name)
    session.commit()
    return actor
