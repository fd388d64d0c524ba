"""Read-only access to the shared `orders` table that the JDBC sink connector writes.

The Order service never writes it: rows appear once the connector has sunk the
order events, so reads are eventually consistent with CreateOrder.
"""

import re
import time
from datetime import datetime, timezone

import pymysql
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
    def __init__(self, url: str, table: str = "orders", timeout_s: float = DEFAULT_TIMEOUT_S, connections: int = 5):
        if not re.fullmatch(r"[A-Za-z0-9_]{1,64}", table):
            raise ValueError(f"orders table name {table!r} is not a plain SQL identifier")
        self._table = table
        # The reads go through the pool's DBAPI connections (see _rows), in autocommit mode:
        # they open no transaction, so a connection goes back to the pool without the ROLLBACK
        # round trip SQLAlchemy's Connection sends (a third of a read's time under load), and
        # without a ping (pool_pre_ping) either: a pooled connection that died meanwhile fails
        # its read at once and the read is tried once more on a fresh one (_query).
        # `connections`: one per call served at once (ordersync.serving.grpc_server.MAX_WORKERS). Beyond
        # the pool SQLAlchemy opens an "overflow" connection per read and closes it after: a
        # connect and login per order, which at 16 calls in flight cost most of the CPU.
        self._engine = sa.create_engine(
            url, pool_size=connections, max_overflow=0, pool_recycle=3600, pool_timeout=timeout_s,
            pool_reset_on_return=None,
            connect_args={"autocommit": True, "connect_timeout": timeout_s, "read_timeout": timeout_s,
                          "write_timeout": timeout_s})

    def get(self, order_id: str) -> dict | None:
        rows = self._query(f"SELECT {_COLUMNS} FROM {self._table} WHERE order_id = %(order_id)s",
                           order_id=order_id)
        return rows[0] if rows else None

    def get_many(self, order_ids: list[str]) -> dict[str, dict]:
        """{order_id: row} of those of `order_ids` that are in the table, in one query."""
        if not order_ids:
            return {}
        rows = self._query(f"SELECT {_COLUMNS} FROM {self._table} WHERE order_id IN %(order_ids)s",
                           order_ids=tuple(order_ids))
        return {row["order_id"]: row for row in rows}

    def list_for_user(self, user_id: str, limit: int, after: tuple[datetime, str] | None) -> list[dict]:
        """Newest first; `after` is the (created_at, order_id) of the last row of the previous page."""
        where = "user_id = %(user_id)s"
        params = {"user_id": user_id, "limit": limit}
        if after:
            where += (" AND (created_at < %(after_ts)s OR (created_at = %(after_ts)s AND order_id < %(after_id)s))")
            params.update(after_ts=after[0].replace(tzinfo=None), after_id=after[1])
        return self._query(
            f"SELECT {_COLUMNS} FROM {self._table} WHERE {where} "
            "ORDER BY created_at DESC, order_id DESC LIMIT %(limit)s", **params)

    def _query(self, sql: str, **params) -> list[dict]:
        started = time.monotonic()
        try:
            try:
                rows = self._rows(sql, params)
            except _Disconnected:
                # Only a connection found dead at once (MariaDB restarted since): a read that
                # timed out has used the time a caller may wait.
                if time.monotonic() - started > _DEAD_AT_ONCE_S:
                    raise
                rows = self._rows(sql, params)
        except pymysql.err.MySQLError as e:
            if e.args and e.args[0] in _NOT_SUNK_YET:
                return []
            raise StoreUnavailable(str(e)) from e
        except PoolTimeout as e:
            raise StoreUnavailable(f"no free database connection: {e}") from e
        except DBAPIError as e:  # a new connection could not be made
            raise StoreUnavailable(str(e.orig)) from e
        return [_with_utc(row) for row in rows]

    def _rows(self, sql, params) -> list[dict]:
        conn = self._engine.raw_connection()
        try:
            cursor = conn.cursor(pymysql.cursors.DictCursor)
            try:
                cursor.execute(sql, params)
                return list(cursor.fetchall())
            finally:
                cursor.close()
        except (pymysql.err.OperationalError, pymysql.err.InterfaceError) as e:
            if not _client_side(e):
                raise  # the server answered (no such column, access denied): the connection is fine
            conn.invalidate()  # not back into the pool: it may be dead or mid-answer
            raise _Disconnected(*e.args) from e
        finally:
            conn.close()

    def close(self) -> None:
        self._engine.dispose()


class _Disconnected(pymysql.err.OperationalError):
    """The connection failed (lost, timed out, server gone); it was discarded."""


# Errors the server sends as it drops the connection: shutting down, connection killed, idle too long.
_SERVER_DROPPED = {1053, 1927, 4031}


def _client_side(error: pymysql.err.MySQLError) -> bool:
    """Whether the connection itself failed: PyMySQL's own errors (no code, or a client error
    code 2000-2999: cannot connect, server gone, lost connection) or the server dropping it,
    not an error the server answered a query with (no such column, access denied)."""
    code = error.args[0] if error.args else None
    return (isinstance(error, pymysql.err.InterfaceError) or not isinstance(code, int)
            or 2000 <= code < 3000 or code in _SERVER_DROPPED)


def _with_utc(row: dict) -> dict:
    # The connector writes Connect Timestamps as UTC DATETIME values.
    if isinstance(row.get("created_at"), datetime):
        row["created_at"] = row["created_at"].replace(tzinfo=timezone.utc)
    return row
