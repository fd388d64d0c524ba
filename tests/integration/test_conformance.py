"""The conformance corpus (tests/conformance) against everything on the sink's side and the whole
pipeline; tests/unit/test_conformance_gate.py runs it against the gate's Python.

- JsonConverter (the real class) reads what the gate writes for each accepted record to exactly
  the event the Catalog applies;
- the orders table's SQL (CHECKs, the id columns, the foreign key, the trigger) refuses exactly
  the decodable records the gate refuses, and writes the others;
- through the real stack: every accepted record is in the table and the stock, every refused
  one in orders.rejected exactly once with its reason, nothing else anywhere.
"""

import uuid
from collections import Counter
from datetime import datetime, timezone

import pymysql
import pytest
import sqlalchemy as sa

from bus.envelope import EnvelopeError, decode, encode
from ordersync.order.v1.order_event_pb2 import OrderPlaced
from stack.schema import orders_table_ddl
from tests.conformance import corpus
from tests.support.jsonconverter import envelope_check
from tests.support.kafka import read_topic
from tests.support.waiting import wait_until

ACCEPTED, DUPLICATE, REFUSED = "accepted", "duplicate", "refused"


@pytest.fixture(scope="module")
def conformance_products(stack):
    """The corpus's products in the Catalog (created once; stock no corpus can exhaust)."""
    engine = sa.create_engine(stack.mariadb_url(stack.catalog_db))
    with engine.begin() as conn:
        for product, price in corpus.PRODUCTS.items():
            conn.execute(sa.text("INSERT IGNORE INTO products (product_id, product_name, stock, unit_price) "
                                 "VALUES (:p, :p, 1000000000, :u)"), {"p": product, "u": price})
    yield engine
    engine.dispose()


def test_jsonconverter_reads_what_the_gate_writes_as_the_event_itself():
    accepted = [r for r in corpus.records() if r.verdict == ACCEPTED]
    written = [encode(decode(r.value, OrderPlaced)) for r in accepted]  # what gate.server writes
    for record, answer in zip(accepted, envelope_check(written)):
        assert "error" not in answer, f"{record}: {answer}"
        e = record.event
        assert answer["value"] == {
            "order_id": f"string:{e['order_id']}", "user_id": f"string:{e['user_id']}",
            "product_id": f"string:{e['product_id']}", "qty": f"int32:{e['qty']}",
            "unit_price": f"int32:{e['unit_price']}", "total_price": f"int32:{e['total_price']}",
            "created_at": f"timestamp:{e['created_at']}"}, str(record)


@pytest.fixture
def scratch_table(stack, conformance_products):
    """A private copy of the orders table (the same DDL), dropped afterwards."""
    table = f"conformance_{uuid.uuid4().hex[:8]}"
    engine = sa.create_engine(stack.mariadb_url(stack.orders_db))
    with engine.begin() as conn:
        for statement in orders_table_ddl(table, stack.catalog_db):
            conn.exec_driver_sql(statement)
    yield engine, table
    with engine.begin() as conn:
        conn.exec_driver_sql(f"DROP TABLE IF EXISTS `{table}`")
    engine.dispose()


COLUMNS = ("order_id", "user_id", "product_id", "qty", "unit_price", "total_price", "created_at")


def sink_upsert(conn, table: str, event: OrderPlaced) -> None:
    """The statement the JDBC sink's MariaDB dialect runs for one record (upsert on order_id)."""
    row = {c: getattr(event, c) for c in COLUMNS[:-1]}
    row["created_at"] = event.created_at.ToDatetime() if event.HasField("created_at") else None
    updates = ", ".join(f"{c} = VALUES({c})" for c in COLUMNS[1:])
    conn.exec_driver_sql(f"INSERT INTO `{table}` ({', '.join(COLUMNS)}) VALUES ({', '.join(['%s'] * 7)}) "
                         f"ON DUPLICATE KEY UPDATE {updates}", tuple(row[c] for c in COLUMNS))


def test_the_tables_sql_refuses_exactly_what_the_gate_refuses(scratch_table):
    engine, table = scratch_table
    checked, disagree = Counter(), []
    for record in corpus.records():
        try:
            event = decode(record.value, OrderPlaced)  # what the rules and the table can be asked about
        except EnvelopeError:
            continue
        try:
            with engine.begin() as conn:
                sink_upsert(conn, table, event)
            refused_by_sql = None
        except sa.exc.DBAPIError as e:
            assert isinstance(e.orig, pymysql.MySQLError), e
            refused_by_sql = str(e.orig)
        checked[record.reason or record.verdict] += 1
        if (refused_by_sql is not None) != (record.verdict == REFUSED):
            disagree.append(f"{record}: gate {record.verdict}, SQL {refused_by_sql or 'writes it'}")
    assert not disagree, "\n".join(disagree)
    # Every verdict the SQL can be asked about was asked (what does not decode has no row).
    assert set(checked) == {ACCEPTED, DUPLICATE, "BreaksEventRules", "UnknownProduct", "OrderIdReused"}, checked
    assert checked[ACCEPTED] >= 50 and checked["BreaksEventRules"] >= 20, checked


def test_the_whole_pipeline_gives_every_record_its_verdict(stack, producer, orders_db, conformance_products):
    token = corpus.fresh_token()
    records = corpus.records(token)
    before = _stock(conformance_products)
    origin = {}  # (partition, offset) on the orders topic -> the record sent there
    for record in records:
        sent = producer.send(stack.orders_topic, record.value, key=record.key)
        origin[(sent.partition(), sent.offset())] = record
    accepted = {r.event["order_id"]: r for r in records if r.verdict == ACCEPTED}

    def landed():
        with orders_db.connect() as conn:
            rows = conn.execute(sa.text(f"SELECT * FROM `{stack.orders_table}` WHERE order_id IN :ids")
                                .bindparams(sa.bindparam("ids", expanding=True)), {"ids": list(accepted)}).mappings().all()
        return rows if len(rows) == len(accepted) else None
    rows = wait_until(landed, timeout=120, what=f"the {len(accepted)} accepted records in the table")
    for row in rows:
        e = accepted[row["order_id"]].event
        assert {c: row[c] for c in COLUMNS[:-1]} == {c: e[c] for c in COLUMNS[:-1]}
        assert _millis(row["created_at"]) == e["created_at"], f"{row['order_id']}: the first event's created_at"

    def applied():
        with conformance_products.connect() as conn:
            found = dict(conn.execute(sa.text("SELECT order_id, qty FROM applied_orders WHERE order_id IN :ids")
                                      .bindparams(sa.bindparam("ids", expanding=True)), {"ids": list(accepted)}).all())
        return found if len(found) == len(accepted) else None
    assert wait_until(applied, timeout=120, what="the accepted records in the stock") == \
        {oid: r.event["qty"] for oid, r in accepted.items()}
    after = _stock(conformance_products)
    for product in corpus.PRODUCTS:
        assert before[product] - after[product] == sum(r.event["qty"] for r in accepted.values()
                                                       if r.event["product_id"] == product), product

    # Every refused record once in orders.rejected, with its reason (told apart by its origin).
    refused = sorted((p, o, r.reason) for (p, o), r in origin.items() if r.verdict == REFUSED)

    def dead_letters():
        found = []
        for m in read_topic(stack.kafka_bootstrap, stack.rejected_topic, timeout=30):
            h = {k: v.decode() for k, v in m.headers()}
            if h["dlq.origin.topic"] == stack.orders_topic and \
                    (int(h["dlq.origin.partition"]), int(h["dlq.origin.offset"])) in origin:
                found.append((int(h["dlq.origin.partition"]), int(h["dlq.origin.offset"]), h["dlq.error.class"]))
        return sorted(found) if len(found) >= len(refused) else None
    assert wait_until(dead_letters, timeout=60, interval=3, what="every refused record in the rejected topic") == refused
    for topic in (stack.sink_dlq_topic, stack.catalog_dlq_topic):
        assert not [m for m in read_topic(stack.kafka_bootstrap, topic, timeout=10) if token in (m.key() or b"")]


def _stock(engine) -> dict[str, int]:
    with engine.connect() as conn:
        return dict(conn.execute(sa.text("SELECT product_id, stock FROM products WHERE product_id IN :p")
                                 .bindparams(sa.bindparam("p", expanding=True)), {"p": list(corpus.PRODUCTS)}).all())


def _millis(moment: datetime) -> int:
    """A DATETIME(3) of the table (UTC, naive) as epoch millis."""
    return round(moment.replace(tzinfo=timezone.utc).timestamp() * 1000)
