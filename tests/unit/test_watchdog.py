"""The sink watchdog's pure parts: what row a record becomes, and finding the refused one in order."""
import json
from datetime import datetime
from types import SimpleNamespace

import pymysql
import pytest

from connect.watchdog import Poison, Transient, record_row, write_until_poison


def envelope(**payload):
    fields = [{"field": "order_id", "type": "string", "optional": False},
              {"field": "qty", "type": "int32", "optional": False},
              {"field": "created_at", "type": "int64", "optional": True,
               "name": "org.apache.kafka.connect.data.Timestamp", "version": 1}]
    body = {"order_id": "o-1", "qty": 2, "created_at": 1_767_225_600_000, **payload}
    return json.dumps({"schema": {"type": "struct", "fields": fields}, "payload": body}).encode()


def test_a_record_becomes_the_row_the_sink_would_write():
    assert record_row(envelope()) == {"order_id": "o-1", "qty": 2, "created_at": datetime(2026, 1, 1)}


def test_a_wrong_number_type_is_written_as_0_like_jsonconverter_does():
    assert record_row(envelope(qty="abc"))["qty"] == 0


@pytest.mark.parametrize("value, reason", [
    (b"\x00\xff not json", "not JSON"),
    (b"[" * 100_000, "not JSON"),
    (json.dumps({"schema": None, "payload": {"order_id": "x"}}).encode(), "no Connect struct"),
    (envelope(created_at=253_402_300_800_000), "cannot be written"),
])
def test_records_the_sink_can_never_write_are_poison(value, reason):
    with pytest.raises(Poison, match=reason):
        record_row(value)


def test_a_tombstone_is_skipped_not_poison():
    assert record_row(None) is None


class Cursor:
    """Records upserts; raises the given error for one order id."""

    def __init__(self, refuse: dict):
        self.refuse, self.written, self.savepoint = refuse, [], []

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def execute(self, sql, params=None):
        if sql.startswith("SHOW COLUMNS"):
            self.rows = [("order_id",), ("qty",), ("created_at",)]
        elif sql.startswith("INSERT"):
            if params[0] in self.refuse:
                raise self.refuse[params[0]]
            self.written.append(params[0])
        elif sql.startswith("ROLLBACK TO"):
            self.savepoint.append("rolled back")

    def fetchall(self):
        return self.rows


class Connection:
    def __init__(self, refuse):
        self.cur, self.commits = Cursor(refuse), 0

    def cursor(self):
        return self.cur

    def commit(self):
        self.commits += 1


def records(*order_ids):
    return [SimpleNamespace(value=lambda oid=oid: None if oid is None else envelope(order_id=oid), oid=oid)
            for oid in order_ids]


def test_the_first_refused_record_is_found_and_the_ones_before_it_are_committed():
    conn = Connection({"bad": pymysql.err.IntegrityError(4025, "CONSTRAINT `qty_range` failed")})
    found = write_until_poison(conn, "orders", ["order_id"], records("a", None, "b", "bad", "c"))
    record, reason = found
    assert record.oid == "bad" and "4025" in reason
    assert conn.cur.written == ["a", "b"] and conn.cur.savepoint == ["rolled back"] and conn.commits == 1


def test_a_lost_connection_is_transient_not_poison():
    conn = Connection({"b": pymysql.err.OperationalError(2013, "Lost connection to server during query")})
    with pytest.raises(Transient):
        write_until_poison(conn, "orders", ["order_id"], records("a", "b"))


def test_nothing_refused_means_the_failure_was_transient():
    conn = Connection({})
    assert write_until_poison(conn, "orders", ["order_id"], records("a", "b")) is None
    assert conn.cur.written == ["a", "b"]
