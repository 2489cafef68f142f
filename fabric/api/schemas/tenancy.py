"""Request and response shapes of users, logins, tokens, projects, members, pools and the
audit trail."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from fabric.api.schemas.common import Public
from fabric.services.tenancy.roles import Role


class LoginRequest(BaseModel):
    username: str = Field(max_length=255)
    password: str = Field(max_length=1024)


class LoginResponse(BaseModel):
    access_token: str
    token_type: str = "bearer"
    expires_at: datetime


class UserCreate(BaseModel):
    username: str
    password: str | None = Field(
        default=None, max_length=1024, description="None for users who sign in through SSO only"
    )
    email: str | None = Field(default=None, max_length=254)
    is_admin: bool = False


class UserUpdate(BaseModel):
    email: str | None = Field(default=None, max_length=254)
    is_admin: bool | None = None
    disabled: bool | None = None
    password: str | None = Field(default=None, max_length=1024)


class PasswordChange(BaseModel):
    current_password: str = Field(max_length=1024)
    new_password: str = Field(max_length=1024)


class UserPublic(Public):
    username: str
    email: str | None
    is_admin: bool
    disabled: bool
    created_at: datetime


class TokenCreate(BaseModel):
    name: str = Field(min_length=1, max_length=100)
    expires_in_days: int | None = Field(default=None, description="default 90; at most the max")


class TokenPublic(Public):
    id: int
    name: str
    prefix: str
    created_at: datetime
    expires_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None


class TokenCreated(TokenPublic):
    token: str = Field(description="the secret; shown only this once")


class ProjectCreate(BaseModel):
    name: str
    description: str = Field(default="", max_length=1000)


class ProjectUpdate(BaseModel):
    description: str = Field(max_length=1000)


class ProjectPublic(Public):
    name: str
    description: str
    created_at: datetime
    role: Role | None = Field(default=None, description="the caller's role; none for admins")


class MemberSet(BaseModel):
    role: Role


class MemberPublic(BaseModel):
    username: str
    role: Role
    created_at: datetime


class PoolCreate(BaseModel):
    name: str
    description: str = Field(default="", max_length=1000)
    resources: dict[str, float] = Field(default_factory=dict, description="per node, e.g. gpu: 8")
    node_selector: dict[str, str] = Field(default_factory=dict)


class PoolPublic(Public):
    name: str
    description: str
    resources: dict[str, float]
    node_selector: dict[str, str]


class AuditEventPublic(Public):
    id: int
    at: datetime
    actor: str
    client: str
    action: str
    object_type: str
    object_name: str
    project: str | None
    detail: dict[str, Any]
