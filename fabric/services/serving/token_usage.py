"""Tokens of llm endpoint calls: one row per call, and the report's lines of them.

The server's door counts each call's prompt and completion tokens from the engine's own
`usage` (in the answer, or in a stream's last chunk, which the door asks for) and records
them here with who called: the key, and the user (the key's owner, or the token's).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from fabric.db.models import ProjectModel, TokenUsageModel, UserModel

KINDS = ("prompt_tokens", "completion_tokens")


@dataclass(frozen=True)
class Call:
    """One call's tokens, as the door saw them."""

    project_id: int
    endpoint: str
    model: str
    key_id: int | None
    key_name: str | None
    user_id: int | None
    prompt_tokens: int
    completion_tokens: int
    at: datetime


def record(sessions: sessionmaker[Session], call: Call) -> None:
    with sessions() as session:
        session.add(TokenUsageModel(**call.__dict__))
        session.commit()


@dataclass(frozen=True)
class TokenLine:
    user: str | None
    endpoint: str | None
    key: str | None
    kind: str
    tokens: int


def lines(
    session: Session,
    project: ProjectModel,
    *,
    since: datetime | None,
    until: datetime | None,
    group_by: str,
) -> list[TokenLine]:
    """Tokens called in [since, until), per kind and the group (`user`, `resource`: none,
    `endpoint`, `key`: the endpoint and the key's name, `-` for calls without a key)."""
    stmt = (
        select(
            UserModel.username,
            TokenUsageModel.endpoint,
            TokenUsageModel.key_name,
            TokenUsageModel.prompt_tokens,
            TokenUsageModel.completion_tokens,
        )
        .outerjoin(UserModel, UserModel.id == TokenUsageModel.user_id)
        .where(TokenUsageModel.project_id == project.id)
    )
    if since is not None:
        stmt = stmt.where(TokenUsageModel.at >= since)
    if until is not None:
        stmt = stmt.where(TokenUsageModel.at < until)
    totals: dict[tuple[str | None, str | None, str | None, str], int] = defaultdict(int)
    for username, endpoint, key_name, prompt, completion in session.execute(stmt):
        group = (
            username if group_by == "user" else None,
            endpoint if group_by in ("endpoint", "key") else None,
            (key_name or "-") if group_by == "key" else None,
        )
        totals[(*group, KINDS[0])] += prompt
        totals[(*group, KINDS[1])] += completion
    return [
        TokenLine(user, endpoint, key, kind, tokens)
        for (user, endpoint, key, kind), tokens in sorted(
            totals.items(), key=lambda item: tuple(str(part) for part in item[0])
        )
    ]
