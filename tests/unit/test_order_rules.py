"""The Order service's rules, without servers."""

import base64
import json
import uuid
from datetime import datetime, timezone

import pytest

from order_svc import rules
from ordersync.contract.ids import MAX_ID_LENGTH


@pytest.mark.parametrize("value, complaint", [
    ("", "user_id is required"),
    ("u" * 65, "at most 64"),
    ("bad id", "may only contain"),
    ("x'; DROP TABLE orders;--", "may only contain"),
])
def test_bad_ids_are_rejected_with_the_reason(value, complaint):
    with pytest.raises(rules.InvalidInput, match=complaint):
        rules.check_id("user_id", value)


def test_good_id_passes_unchanged():
    assert rules.check_id("product_id", "CATALOG-001") == "CATALOG-001"
    assert rules.check_id("user_id", "u" * 64) == "u" * 64


@pytest.mark.parametrize("qty, complaint", [(0, "at least 1"), (-3, "at least 1"), (10_001, "at most 10000")])
def test_qty_out_of_range(qty, complaint):
    with pytest.raises(rules.InvalidInput, match=complaint):
        rules.check_qty(qty)


def test_qty_bounds_are_inclusive():
    assert rules.check_qty(1) == 1
    assert rules.check_qty(rules.MAX_QTY) == rules.MAX_QTY


@pytest.mark.parametrize("value", ["", "not-a-uuid", "1234", "g" * 32])
def test_malformed_request_id(value):
    with pytest.raises(rules.InvalidInput, match="request_id"):
        rules.check_request_id(value)


def test_request_id_is_canonicalised():
    rid = uuid.uuid4()
    assert rules.check_request_id(str(rid).upper()) == str(rid)
    assert rules.check_request_id(str(rid)) == str(rid)


@pytest.mark.parametrize("spelling", ["{%s}", "urn:uuid:%s", "hex"])
def test_other_uuid_spellings_are_refused_with_the_accepted_form(spelling):
    # One request, one spelling: otherwise "{x}" and "x" would place two orders.
    rid = uuid.uuid4()
    value = rid.hex if spelling == "hex" else spelling % rid
    with pytest.raises(rules.InvalidInput, match="8-4-4-4-12 hex digits"):
        rules.check_request_id(value)


def test_order_id_is_deterministic_per_user_and_request():
    rid = str(uuid.uuid4())
    assert rules.order_id_for("alice", rid) == rules.order_id_for("alice", rid)
    assert rules.order_id_for("alice", rid) != rules.order_id_for("bob", rid)
    assert rules.order_id_for("alice", rid) != rules.order_id_for("alice", str(uuid.uuid4()))
    uuid.UUID(rules.order_id_for("alice", rid))


def test_total_price_and_int32_overflow():
    assert rules.total_price(5, 1200) == 6000
    with pytest.raises(rules.InvalidInput, match="exceeds"):
        rules.total_price(10_000, 2**30)


def test_unit_price_must_reach_the_event_minimum():
    assert rules.check_unit_price("CATALOG-001", 1) == 1
    with pytest.raises(rules.NotOrderable, match="unit price 0 in the catalog, below the minimum 1"):
        rules.check_unit_price("CATALOG-001", 0)


def test_stock_check():
    rules.check_stock("CATALOG-001", 100, 100)
    with pytest.raises(rules.NotEnoughStock, match="100 units left, 101 were ordered"):
        rules.check_stock("CATALOG-001", 101, 100)


def test_page_size():
    assert rules.page_size(0) == rules.DEFAULT_PAGE_SIZE
    assert rules.page_size(7) == 7
    assert rules.page_size(10_000) == rules.MAX_PAGE_SIZE
    with pytest.raises(rules.InvalidInput, match="negative"):
        rules.page_size(-1)


def test_page_token_round_trip_and_garbage():
    at = datetime(2026, 11, 25, 8, 30, 1, 123000, tzinfo=timezone.utc)
    token = rules.encode_page_token(at, "abc")
    assert rules.decode_page_token(token) == (at, "abc")
    for garbage in ["%%%", "bm90IGpzb24=", rules.encode_page_token(at, "x")[:-4] + "!!!!"]:
        with pytest.raises(rules.InvalidInput, match="page_token is malformed"):
            rules.decode_page_token(garbage)


def _token(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode()


@pytest.mark.parametrize("raw", [
    b"[" * 100_000,  # json would raise RecursionError
    b"[" * 150,  # short enough to pass the length bound
    json.dumps(["2026-11-25T08:30:01", 5]).encode(),
    json.dumps(["2026-11-25T08:30:01", "a", "b"]).encode(),
    json.dumps({"2026-11-25T08:30:01": "a"}).encode(),
    json.dumps([None, "a"]).encode(),
    json.dumps("ab").encode(),
    json.dumps(["not a date", "a"]).encode(),
    b"\xff\xfe",
])
def test_crafted_page_tokens_are_malformed_not_a_crash(raw):
    with pytest.raises(rules.InvalidInput, match="page_token is malformed"):
        rules.decode_page_token(_token(raw))


def test_page_token_length_is_bounded():
    at = datetime(2026, 11, 25, tzinfo=timezone.utc)
    longest = rules.encode_page_token(at, "o" * MAX_ID_LENGTH)
    assert len(longest) <= rules.MAX_PAGE_TOKEN_LENGTH
    with pytest.raises(rules.InvalidInput, match="page_token is malformed"):
        rules.decode_page_token(_token(json.dumps([at.isoformat(), "o" * 300]).encode()))


def test_event_rules_refuse_a_timestamp_protobuf_itself_cannot_convert():
    from google.protobuf.timestamp_pb2 import Timestamp

    from ordersync.contract.event_rules import InvalidInput, check_order_placed
    from ordersync.order.v1 import order_event_pb2
    event = order_event_pb2.OrderPlaced(order_id="o-1", user_id="u", product_id="p", qty=1, unit_price=1,
                                        total_price=1, created_at=Timestamp(seconds=253_402_300_800))
    with pytest.raises(InvalidInput, match="created_at"):
        check_order_placed(event)
