"""Records on the orders topic that must never reach the table or the stock, by class of input.

Shared by the fault tests (one of each kind, and bursts of many). Each maker takes the key
(a run-unique order id) and a valid order of the test's own product, and returns the record's
value (bytes, or None for a tombstone).
"""

import json
import os

from google.protobuf.timestamp_pb2 import Timestamp

from bus.envelope import encode
from ordersync.order.v1 import order_event_pb2

CREATED_AT_S = 1_767_225_600  # 2026-01-01


def valid_event(order_id: str, user_id: str, product_id: str, qty: int = 1, unit_price: int = 100):
    return order_event_pb2.OrderPlaced(order_id=order_id, user_id=user_id, product_id=product_id, qty=qty,
                                       unit_price=unit_price, total_price=qty * unit_price,
                                       created_at=Timestamp(seconds=CREATED_AT_S))


def valid_envelope(order_id: str, user_id: str, product_id: str, qty: int = 1, unit_price: int = 100) -> dict:
    return json.loads(encode(valid_event(order_id, user_id, product_id, qty, unit_price)))


def _changed(envelope: dict, **payload) -> bytes:
    envelope["payload"].update(payload)
    return json.dumps(envelope).encode()


def _schema_changed(envelope: dict, field: str, **change) -> bytes:
    for f in envelope["schema"]["fields"]:
        if f["field"] == field:
            f.update(change)
    return json.dumps(envelope).encode()


def _without(envelope: dict, part: str) -> bytes:
    del envelope[part]
    return json.dumps(envelope).encode()


def _missing_field(envelope: dict) -> bytes:
    envelope["schema"]["fields"] = [f for f in envelope["schema"]["fields"] if f["field"] != "created_at"]
    del envelope["payload"]["created_at"]
    return json.dumps(envelope).encode()


# kind -> maker(envelope of a valid order with that key) -> value. Grouped by class of input. (A
# field the contract does not have is no poison: the gate and the Catalog drop it, as a newer
# producer's, bus.evolution.)
KINDS = {
    # Not an envelope at all.
    "random-bytes": lambda e: os.urandom(300),
    "invalid-json": lambda e: b'{"schema": {"type": "struct", "fields": [',
    "deep-nesting": lambda e: b"[" * 100_000,
    "1-MB": lambda e: b"x" * 1_000_000,
    "tombstone": lambda e: None,
    "no-schema": lambda e: _without(e, "schema"),
    "null-schema": lambda e: json.dumps({**e, "schema": None}).encode(),
    # A schema Connect does not know, or that does not fit the contract.
    "type-String": lambda e: _schema_changed(e, "order_id", type="String"),
    "missing-field": _missing_field,
    "qty-as-int64": lambda e: _schema_changed(e, "qty", type="int64"),
    # Numbers JsonConverter coerces without an error.
    "qty-1.5": lambda e: _changed(e, qty=1.5),
    "qty-string": lambda e: _changed(e, qty="1"),
    "qty-true": lambda e: _changed(e, qty=True),
    "qty-2^31": lambda e: _changed(e, qty=2**31),
    "price-as-string": lambda e: _changed(e, unit_price="100", total_price="100"),
    "number-for-string": lambda e: _changed(e, user_id=42),
    # Decodes, but breaks the event rules.
    "negative-qty": lambda e: _changed(e, qty=-5, total_price=-500),
    "wrong-total": lambda e: _changed(e, total_price=99),
    "300-char-id": lambda e: _changed(e, order_id="x" * 300),
    "bad-id-chars": lambda e: _changed(e, user_id="erin smith"),
    "year-10000": lambda e: _changed(e, created_at=253_402_300_800_000),
    # Decodes and follows the rules, but the catalog does not know the product.
    "unknown-product": lambda e: _changed(e, product_id="BURST-404"),
    "product-in-lower-case": lambda e: _changed(e, product_id=e["payload"]["product_id"].lower()),
}


def poison(kind: str, order_id: str, user_id: str, product_id: str) -> bytes | None:
    return KINDS[kind](valid_envelope(order_id, user_id, product_id))


def reused_id(order_id: str, user_id: str, product_id: str) -> bytes:
    """The order id of an order already placed (1 x product at 100), with other content: as a second
    instance would publish it before the first event was seen."""
    return _changed(valid_envelope(order_id, user_id, product_id), qty=7, total_price=700)
