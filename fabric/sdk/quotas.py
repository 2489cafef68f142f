"""What a project may use and what it used: quotas, allocations held against them, and the
metered usage."""

from __future__ import annotations

from datetime import datetime

from fabric.api.schemas.quotas import AllocationPublic, QuotaPublic, UsagePublic
from fabric.sdk.transport import Transport, part, query


class QuotasApi(Transport):
    # Quotas

    def show_quotas(self, project: str) -> list[QuotaPublic]:
        return self._many(QuotaPublic, "GET", f"/api/v1/projects/{part(project)}/quotas")

    def set_quota(
        self,
        project: str,
        resource: str,
        kind: str,
        limit: float,
        *,
        period: str | None = None,
        user: str | None = None,
    ) -> None:
        """A project-wide limit, or one for `user` inside the project."""
        body = {
            "resource": resource,
            "kind": kind,
            "limit": limit,
            "period": period,
            "user": user,
        }
        self._send("PUT", f"/api/v1/projects/{part(project)}/quotas", json=body)

    def remove_quota(
        self, project: str, resource: str, kind: str, *, user: str | None = None
    ) -> None:
        params = query(resource=resource, kind=kind, user=user)
        self._send("DELETE", f"/api/v1/projects/{part(project)}/quotas", params=params)

    # Allocations

    def create_allocation(
        self,
        project: str,
        resources: dict[str, float],
        *,
        pool: str | None = None,
        purpose: str = "",
        expected_seconds: float | None = None,
    ) -> AllocationPublic:
        """Admit `resources` against the project's quotas; ApiError 409 when they do not fit."""
        body = {
            "resources": resources,
            "pool": pool,
            "purpose": purpose,
            "expected_seconds": expected_seconds,
        }
        path = f"/api/v1/projects/{part(project)}/allocations"
        return self._one(AllocationPublic, "POST", path, json=body)

    def list_allocations(self, project: str, *, state: str | None = None) -> list[AllocationPublic]:
        path = f"/api/v1/projects/{part(project)}/allocations"
        return self._many(AllocationPublic, "GET", path, params=query(state=state))

    def get_allocation(self, project: str, allocation_id: int) -> AllocationPublic:
        path = f"/api/v1/projects/{part(project)}/allocations/{part(allocation_id)}"
        return self._one(AllocationPublic, "GET", path)

    def release_allocation(self, project: str, allocation_id: int) -> AllocationPublic:
        path = f"/api/v1/projects/{part(project)}/allocations/{part(allocation_id)}/release"
        return self._one(AllocationPublic, "POST", path)

    # Usage

    def usage(
        self,
        project: str,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        group_by: str | None = None,
    ) -> list[UsagePublic]:
        """Metered resource-seconds that ended in [since, until), per user (or per resource)."""
        params = query(since=since, until=until, group_by=group_by)
        path = f"/api/v1/projects/{part(project)}/usage"
        return self._many(UsagePublic, "GET", path, params=params)
