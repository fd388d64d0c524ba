"""Waiting for an outcome: a condition, a row, a user's rows; a timeout fails the test."""

import time

import pytest
import sqlalchemy as sa

from tests.support.tables import user_rows


def wait_until(check, timeout: float = 60, interval: float = 0.5, what: str = "the condition"):
    """Call check() until it returns something truthy and return that; fail the test on timeout."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)


def wait_for_row(engine: sa.Engine, sql: str, params: dict | None = None, timeout: float = 60):
    """Run a SELECT until it returns a row; return that row as a dict."""
    def first_row():
        with engine.connect() as conn:
            try:
                row = conn.execute(sa.text(sql), params or {}).mappings().first()
            except sa.exc.ProgrammingError:  # table not created by the sink yet
                return None
        return dict(row) if row else None
    return wait_until(first_row, timeout=timeout, what=f"a row from {sql!r} {params or ''}")


def wait_for_user_rows(engine: sa.Engine, table: str, user_id: str, count: int, timeout: float = 60) -> list:
    """Poll until the user has exactly `count` rows in the table; return them."""
    def complete():
        rows = user_rows(engine, table, user_id)
        return rows if len(rows) == count else None
    return wait_until(complete, timeout=timeout, what=f"{count} rows of {user_id} in {table}")
