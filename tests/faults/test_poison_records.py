"""Poison records on the orders topic: each ends up in a dead-letter topic with its reason, the
sink and the Catalog go on with the next record, and every good order around them is in the
table and the stock. Nothing needs a human (the sink's watchdog heals refused writes).
"""
import json
import os
import time
import uuid

import pytest
from google.protobuf.timestamp_pb2 import Timestamp

from bus.envelope import encode
from connect import register
from ordersync.order.v1 import order_event_pb2, order_service_pb2
from tests.helpers import read_topic, user_rows, wait_until

SETTLE_S = 240


def valid_envelope(order_id: str) -> dict:
    event = order_event_pb2.OrderPlaced(order_id=order_id, user_id="poison-user", product_id="CATALOG-001",
                                        qty=1, unit_price=1500, total_price=1500,
                                        created_at=Timestamp(seconds=1_767_225_600))
    return json.loads(encode(event))


def changed(order_id: str, **payload) -> bytes:
    envelope = valid_envelope(order_id)
    envelope["payload"].update(payload)
    return json.dumps(envelope).encode()


def poison_records(run: str) -> dict:
    """kind -> (key, value). Keys are unique per run so the dead-letter topics can be searched."""
    def key(kind):
        return f"poison-{kind}-{run}"

    def type_string(order_id):
        envelope = valid_envelope(order_id)
        envelope["schema"]["fields"][0]["type"] = "String"
        return json.dumps(envelope).encode()

    def without(order_id, part, value=...):
        envelope = valid_envelope(order_id)
        if value is ...:
            del envelope[part]
        else:
            envelope[part] = value
        return json.dumps(envelope).encode()

    kinds = {
        "random-bytes": lambda k: os.urandom(300),
        "invalid-json": lambda k: b'{"schema": {"type": "struct", "fields": [',
        "no-schema": lambda k: without(k, "schema"),
        "null-schema": lambda k: without(k, "schema", None),
        "type-String": type_string,
        "wrong-field-type": lambda k: changed(k, qty="abc"),
        "unknown-product": lambda k: changed(k, product_id="CATALOG-404"),
        "negative-qty": lambda k: changed(k, qty=-5, total_price=-7500),
        "300-char-id": lambda k: changed("x" * 300),
        "year-10000": lambda k: changed(k, created_at=253_402_300_800_000),
        "deep-nesting": lambda k: b"[" * 100_000,
        "1-MB": lambda k: b"x" * 1_000_000,
        "tombstone": lambda k: None,
    }
    return {kind: (key(kind), make(key(kind))) for kind, make in kinds.items()}


def place(stub, user_id: str, qty: int = 1, request_id: str | None = None):
    return stub.CreateOrder(order_service_pb2.CreateOrderRequest(
        user_id=user_id, product_id="CATALOG-002", qty=qty, request_id=request_id or str(uuid.uuid4())),
        timeout=15).order


def test_poison_records_are_dead_lettered_and_nothing_stops(stack, topology, producer, order_stubs, orders_db,
                                                            kafka_bootstrap, catalog_stub, capsys):
    run = uuid.uuid4().hex[:8]
    user_id = f"poison-{run}"
    poisons = poison_records(run)
    good = []
    began = time.monotonic()
    for i, (kind, (key, value)) in enumerate(poisons.items()):
        good.append(place(order_stubs[i % 2], user_id).order_id)
        producer.send(stack.orders_topic, value, key=key)
    # The same order id again with other content (as a second instance would publish it before
    # the first row landed): the first event wins on both sides, the second is refused by both.
    first = valid_envelope(good[0])
    conflicting = changed(good[0], qty=7, total_price=7 * 1000, product_id="CATALOG-002",
                          user_id=user_id, unit_price=1000, created_at=first["payload"]["created_at"])
    producer.send(stack.orders_topic, conflicting, key=good[0])
    for i in range(5):
        good.append(place(order_stubs[i % 2], user_id).order_id)

    # Every good order lands once in the table ...
    rows = wait_until(lambda: (r := user_rows(orders_db, stack.orders_table, user_id)) and len(r) == len(good) and r,
                      timeout=SETTLE_S, what=f"{len(good)} good orders in the table")
    assert sorted(r.order_id for r in rows) == sorted(good)
    assert {r.order_id: r.qty for r in rows}[good[0]] == 1, "the first event of an order wins"
    landed = time.monotonic() - began

    # The stock: every good order applied once (CATALOG-002, 1 unit each), none of the poison.
    wait_until(lambda: _applied(stack, good) == len(good), timeout=SETTLE_S, what="the stock of every good order")
    # ... and every poison record in a dead-letter topic, with a reason.
    expected = {key for key, _ in poisons.values()} | {good[0]}

    def dead_letters():
        sink = {m.key().decode(): m for m in _read_keys(kafka_bootstrap, stack.sink_dlq_topic)}
        catalog = {m.key().decode(): m for m in _read_keys(kafka_bootstrap, stack.catalog_dlq_topic)}
        # The sink skips a tombstone (it never deletes: delete.enabled=false); the Catalog refuses it.
        complete = expected <= set(catalog) and expected - {poisons["tombstone"][0]} <= set(sink)
        return (sink, catalog) if complete else None
    try:
        sink_dlq, catalog_dlq = wait_until(dead_letters, timeout=60, interval=3, what="every dead letter")
    except pytest.fail.Exception:
        sink_dlq = {m.key().decode(): m for m in _read_keys(kafka_bootstrap, stack.sink_dlq_topic)}
        catalog_dlq = {m.key().decode(): m for m in _read_keys(kafka_bootstrap, stack.catalog_dlq_topic)}
    lines = [f"\n{'poison record':18} | sink DLQ | catalog DLQ   (good orders in the table after {landed:.1f}s)"]
    for kind, key in [*((kind, key) for kind, (key, _) in poisons.items()), ("conflicting dup", good[0])]:
        lines.append(f"{kind:18} | {'yes' if key in sink_dlq else 'no':8} | {'yes' if key in catalog_dlq else 'no'}")
    with capsys.disabled():  # the figures belong in every run's output
        print("\n".join(lines))
    for kind, (key, _) in poisons.items():
        assert key in catalog_dlq, f"{kind} is not in the Catalog's dead-letter topic"
        assert dict(catalog_dlq[key].headers())["dlq.error.message"], f"{kind} dead-lettered without a reason"
        if kind == "tombstone":
            continue
        assert key in sink_dlq, f"{kind} is not in the sink's dead-letter topic"
        assert dict(sink_dlq[key].headers())["__connect.errors.exception.message"], kind
    assert good[0] in sink_dlq and good[0] in catalog_dlq, "the conflicting duplicate is refused by both sides"

    status = register.connector_status(stack.connect_url, stack.sink_name)
    assert [t["state"] for t in status["tasks"]] == ["RUNNING"] * len(status["tasks"]), status
    for service in topology.services:
        assert topology.supervisor.pid(service), f"{service.name} died"


def _read_keys(bootstrap, topic):
    return [m for m in read_topic(bootstrap, topic, timeout=30) if m.key() is not None]


def _applied(stack, order_ids) -> int:
    import sqlalchemy as sa
    engine = sa.create_engine(stack.mariadb_url(stack.catalog_db))
    try:
        with engine.connect() as conn:
            return conn.execute(sa.text("SELECT COUNT(*) FROM applied_orders WHERE order_id IN :ids")
                                .bindparams(sa.bindparam("ids", expanding=True)), {"ids": list(order_ids)}).scalar()
    finally:
        engine.dispose()
