"""Read requests the API sends to the Store actor (the Store turns them into SQL)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

MAX_PAGE = 500


@dataclass(frozen=True)
class ListQuery:
    """A page of rows, newest first, filtered by equality and by a time range."""

    table: str
    limit: int = 100
    offset: int = 0
    symbol: str | None = None
    status: str | None = None
    since: datetime | None = None
    until: datetime | None = None
