"""What every response shape shares."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Public(BaseModel):
    model_config = ConfigDict(from_attributes=True)
