"""Who acts, from where, and when: what every service needs for checks and the audit trail."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from fabric.clock import Clock
from fabric.db.models import UserModel


@dataclass(frozen=True)
class Actor:
    user: UserModel
    client: str
    clock: Clock

    @property
    def name(self) -> str:
        return self.user.username

    def now(self) -> datetime:
        return self.clock.now()
