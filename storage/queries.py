"""Read queries behind the API: one place for the SQL, parameters always bound."""

from __future__ import annotations

from typing import Any

from engine.read_models import MAX_PAGE, ListQuery
from storage.writes import check_ident

# table -> (id column, time column, columns that may be filtered by equality)
_LISTABLE: dict[str, tuple[str, str, tuple[str, ...]]] = {
    "signals": ("signal_id", "received_at", ("symbol", "status")),
    "orders": ("order_id", "created_at", ("symbol", "status")),
    "positions": ("position_id", "opened_at", ("symbol", "status")),
    "trades": ("trade_id", "filled_at", ()),
}


def list_sql(query: ListQuery) -> tuple[str, list[Any]]:
    id_col, time_col, filterable = _LISTABLE[check_ident(query.table)]
    where: list[str] = []
    params: list[Any] = []
    for column, value in (("symbol", query.symbol), ("status", query.status)):
        if value is not None and column in filterable:
            where.append(f"{column} = ?")
            params.append(value)
    if query.since is not None:
        where.append(f"{time_col} >= ?")
        params.append(query.since)
    if query.until is not None:
        where.append(f"{time_col} < ?")
        params.append(query.until)
    clause = f"WHERE {' AND '.join(where)}" if where else ""
    limit = max(1, min(query.limit, MAX_PAGE))
    sql = (
        f"SELECT * FROM {query.table} {clause} "
        f"ORDER BY {time_col} DESC, {id_col} DESC LIMIT {limit} OFFSET {max(0, query.offset)}"
    )
    return sql, params


def signal_trail_sql() -> list[tuple[str, str]]:
    """(part name, SQL with one `?` for the signal id) for the whole trail of one signal."""
    return [
        ("signal", "SELECT * FROM signals WHERE signal_id = ?"),
        ("decision", "SELECT * FROM refactored_signals WHERE signal_id = ?"),
        ("orders", "SELECT * FROM orders WHERE signal_id = ? ORDER BY order_id"),
        (
            "trades",
            "SELECT t.* FROM trades t JOIN orders o USING (order_id) "
            "WHERE o.signal_id = ? ORDER BY t.trade_id",
        ),
        (
            "positions",
            "SELECT p.* FROM positions p JOIN orders o ON p.entry_order_id = o.order_id "
            "WHERE o.signal_id = ? ORDER BY p.position_id",
        ),
        (
            "events",
            "SELECT seq, event_time, kind, stream, payload FROM events "
            "WHERE entity_id = CAST(? AS VARCHAR) AND stream = 'signals' ORDER BY seq",
        ),
    ]
