"""Read-only access to the shared `orders` table that the JDBC sink connector writes.

The Order service never writes it: rows appear once the connector has sunk the
order events, so reads are eventually consistent with CreateOrder.
"""

import re
import time
from datetime import datetime, timezone

import sqlalchemy as sa
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout

_COLUMNS = "order_id, user_id, product_id, qty, unit_price, total_price, created_at"
# MariaDB errors meaning the connector has not yet created the table, or not yet added a
# column by schema evolution: no order has been sunk in that shape, so there is nothing to read.
_NOT_SUNK_YET = {1146, 1054}
# Seconds a read may take to connect, send, receive or wait for a pooled connection: a
# MariaDB that is down or hung must not hold CreateOrder (PyMySQL waits forever by default).
DEFAULT_TIMEOUT_S = 2
_DEAD_AT_ONCE_S = 0.2


class StoreUnavailable(Exception):
    """The shared orders table cannot be read right now."""


class OrderStore:
    def __init__(self, url: str, table: str = "orders", timeout_s: float = DEFAULT_TIMEOUT_S):
        if not re.fullmatch(r"[A-Za-z0-9_]{1,64}", table):
            raise ValueError(f"orders table name {table!r} is not a plain SQL identifier")
        self._table = table
        # No pool_pre_ping: a ping per read doubles the round trips of CreateOrder's check.
        # A pooled connection that died meanwhile fails its read at once, is discarded, and
        # the read is tried once more on a fresh one (_query).
        self._engine = sa.create_engine(
            url, pool_recycle=3600, pool_timeout=timeout_s,
            connect_args={"connect_timeout": timeout_s, "read_timeout": timeout_s, "write_timeout": timeout_s})

    def get(self, order_id: str) -> dict | None:
        rows = self._query(f"SELECT {_COLUMNS} FROM {self._table} WHERE order_id = :order_id",
                           order_id=order_id)
        return rows[0] if rows else None

    def list_for_user(self, user_id: str, limit: int, after: tuple[datetime, str] | None) -> list[dict]:
        """Newest first; `after` is the (created_at, order_id) of the last row of the previous page."""
        where = "user_id = :user_id"
        params = {"user_id": user_id, "limit": limit}
        if after:
            where += " AND (created_at < :after_ts OR (created_at = :after_ts AND order_id < :after_id))"
            params.update(after_ts=after[0].replace(tzinfo=None), after_id=after[1])
        return self._query(
            f"SELECT {_COLUMNS} FROM {self._table} WHERE {where} "
            "ORDER BY created_at DESC, order_id DESC LIMIT :limit", **params)

    def _query(self, sql: str, **params) -> list[dict]:
        started = time.monotonic()
        try:
            try:
                rows = self._rows(sql, params)
            except DBAPIError as e:
                # Only a connection found dead at once (MariaDB restarted since): a read that
                # timed out has used the time a caller may wait.
                if not e.connection_invalidated or time.monotonic() - started > _DEAD_AT_ONCE_S:
                    raise
                rows = self._rows(sql, params)
        except DBAPIError as e:
            if getattr(e.orig, "args", [None])[0] in _NOT_SUNK_YET:
                return []
            raise StoreUnavailable(str(e.orig)) from e
        except PoolTimeout as e:
            raise StoreUnavailable(f"no free database connection: {e}") from e
        return [_with_utc(dict(row)) for row in rows]

    def _rows(self, sql, params):
        with self._engine.connect() as conn:
            return conn.execute(sa.text(sql), params).mappings().all()

    def close(self) -> None:
        self._engine.dispose()


def _with_utc(row: dict) -> dict:
    # The connector writes Connect Timestamps as UTC DATETIME values.
    if isinstance(row.get("created_at"), datetime):
        row["created_at"] = row["created_at"].replace(tzinfo=timezone.utc)
    return row
