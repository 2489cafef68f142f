"""UPDATE and DELETE statements whose outcome is the number of rows they matched."""

from __future__ import annotations

from typing import Any, cast

from sqlalchemy import CursorResult, Delete, Update
from sqlalchemy.orm import Session


def rows_changed(session: Session, statement: Update | Delete) -> int:
    """Run the statement (without RETURNING) in the session; how many rows it matched.

    A conditional update that matched no row lost a race: its caller checks this count.
    """
    # Session.execute returns a CursorResult for such a statement, but is typed to return a
    # Result, as it cannot promise that for every statement; SQLAlchemy advises the cast.
    result = cast(CursorResult[Any], session.execute(statement))
    return result.rowcount
