"""Who may do what: logging in, users and their API tokens, projects and their members, pools,
and the audit trail."""

from __future__ import annotations

from datetime import datetime
from typing import Self

from fabric.api.schemas.tenancy import (
    AuditEventPublic,
    LoginResponse,
    MemberPublic,
    PoolPublic,
    ProjectPublic,
    TokenCreated,
    TokenPublic,
    UserPublic,
)
from fabric.sdk.transport import Transport, part, query


class TenancyApi(Transport):
    # Session

    @classmethod
    def login(cls, url: str, username: str, password: str, *, timeout: float = 30.0) -> Self:
        """A client holding a new login session for `username`."""
        with cls(url, timeout=timeout) as anonymous:
            session = anonymous._one(
                LoginResponse,
                "POST",
                "/api/v1/auth/login",
                json={"username": username, "password": password},
            )
        return cls(url, session.access_token, timeout=timeout)

    def logout(self) -> None:
        self._send("POST", "/api/v1/auth/logout")

    def me(self) -> UserPublic:
        return self._one(UserPublic, "GET", "/api/v1/users/me")

    def change_password(self, current_password: str, new_password: str) -> None:
        self._send(
            "POST",
            "/api/v1/users/me/password",
            json={"current_password": current_password, "new_password": new_password},
        )

    # Users (admins)

    def create_user(
        self,
        username: str,
        password: str | None = None,
        *,
        email: str | None = None,
        is_admin: bool = False,
    ) -> UserPublic:
        body = {"username": username, "password": password, "email": email, "is_admin": is_admin}
        return self._one(UserPublic, "POST", "/api/v1/users", json=body)

    def list_users(self) -> list[UserPublic]:
        return self._many(UserPublic, "GET", "/api/v1/users")

    def get_user(self, username: str) -> UserPublic:
        return self._one(UserPublic, "GET", f"/api/v1/users/{part(username)}")

    def update_user(
        self,
        username: str,
        *,
        email: str | None = None,
        is_admin: bool | None = None,
        disabled: bool | None = None,
        password: str | None = None,
    ) -> UserPublic:
        """Change only the fields given; a new password ends the user's sessions and tokens."""
        fields = {"email": email, "is_admin": is_admin, "disabled": disabled, "password": password}
        body = {key: value for key, value in fields.items() if value is not None}
        return self._one(UserPublic, "PATCH", f"/api/v1/users/{part(username)}", json=body)

    # API tokens of the caller

    def create_token(self, name: str, *, days: int | None = None) -> TokenCreated:
        """The new token, with its secret in `token`: the only time the server shows it."""
        body = {"name": name, "expires_in_days": days}
        return self._one(TokenCreated, "POST", "/api/v1/tokens", json=body)

    def list_tokens(self) -> list[TokenPublic]:
        return self._many(TokenPublic, "GET", "/api/v1/tokens")

    def revoke_token(self, token_id: int) -> None:
        self._send("DELETE", f"/api/v1/tokens/{part(token_id)}")

    # Projects and members

    def create_project(self, name: str, *, description: str = "") -> ProjectPublic:
        body = {"name": name, "description": description}
        return self._one(ProjectPublic, "POST", "/api/v1/projects", json=body)

    def list_projects(self) -> list[ProjectPublic]:
        return self._many(ProjectPublic, "GET", "/api/v1/projects")

    def get_project(self, name: str) -> ProjectPublic:
        return self._one(ProjectPublic, "GET", f"/api/v1/projects/{part(name)}")

    def update_project(self, name: str, *, description: str) -> ProjectPublic:
        body = {"description": description}
        return self._one(ProjectPublic, "PATCH", f"/api/v1/projects/{part(name)}", json=body)

    def delete_project(self, name: str) -> None:
        self._send("DELETE", f"/api/v1/projects/{part(name)}")

    def list_members(self, project: str) -> list[MemberPublic]:
        return self._many(MemberPublic, "GET", f"/api/v1/projects/{part(project)}/members")

    def set_member(self, project: str, username: str, role: str = "member") -> MemberPublic:
        """Add the user to the project, or change their role there."""
        path = f"/api/v1/projects/{part(project)}/members/{part(username)}"
        return self._one(MemberPublic, "PUT", path, json={"role": role})

    def remove_member(self, project: str, username: str) -> None:
        self._send("DELETE", f"/api/v1/projects/{part(project)}/members/{part(username)}")

    # Pools

    def create_pool(
        self,
        name: str,
        *,
        resources: dict[str, float] | None = None,
        node_selector: dict[str, str] | None = None,
        description: str = "",
    ) -> PoolPublic:
        body = {
            "name": name,
            "description": description,
            "resources": resources or {},
            "node_selector": node_selector or {},
        }
        return self._one(PoolPublic, "POST", "/api/v1/pools", json=body)

    def list_pools(self) -> list[PoolPublic]:
        return self._many(PoolPublic, "GET", "/api/v1/pools")

    def get_pool(self, name: str) -> PoolPublic:
        return self._one(PoolPublic, "GET", f"/api/v1/pools/{part(name)}")

    def delete_pool(self, name: str) -> None:
        self._send("DELETE", f"/api/v1/pools/{part(name)}")

    def project_pools(self, project: str) -> list[PoolPublic]:
        return self._many(PoolPublic, "GET", f"/api/v1/projects/{part(project)}/pools")

    def grant_pool(self, project: str, pool: str) -> None:
        self._send("PUT", f"/api/v1/projects/{part(project)}/pools/{part(pool)}")

    def revoke_pool(self, project: str, pool: str) -> None:
        self._send("DELETE", f"/api/v1/projects/{part(project)}/pools/{part(pool)}")

    # Audit

    def platform_audit(
        self,
        *,
        project: str | None = None,
        user: str | None = None,
        action: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int = 100,
    ) -> list[AuditEventPublic]:
        """Every event on the platform (admins only); pass aware datetimes."""
        params = query(
            project=project, user=user, action=action, since=since, until=until, limit=limit
        )
        return self._many(AuditEventPublic, "GET", "/api/v1/audit", params=params)

    def project_audit(
        self,
        project: str,
        *,
        user: str | None = None,
        action: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int = 100,
    ) -> list[AuditEventPublic]:
        """One project's events (its owners and admins); pass aware datetimes."""
        params = query(user=user, action=action, since=since, until=until, limit=limit)
        path = f"/api/v1/projects/{part(project)}/audit"
        return self._many(AuditEventPublic, "GET", path, params=params)
