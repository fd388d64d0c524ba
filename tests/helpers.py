"""Helpers the tests share: waiting for outcomes, reading the sink's rows and the consumers' lag,
an acknowledged producer, private copies of the sink connector, a service's metrics, and envelopes
through the real JsonConverter."""

import json
import os
import shutil
import subprocess
import time
import urllib.request
import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa
from prometheus_client.parser import text_string_to_metric_families

from connect import register
from ordersync.config import ROOT, Settings
from stack.infra import KAFKA_LIBS
from stack.process import Part, StackError


def session_topology(topology, what: str):
    """Yield `topology` once it is up, for a session fixture. A start that fails fails the
    tests with its reason (not an error per test); it is destroyed afterwards unless
    KEEP_TEST_STACK is set."""
    try:
        try:
            topology.up()
        except (StackError, register.ConnectorError) as err:
            pytest.fail(f"the tests' private {what} did not come up: {err}", pytrace=False)
        yield topology
    finally:
        if os.environ.get("KEEP_TEST_STACK"):
            print(f"\nkept the test {what} in {topology.settings.stack_dir}")
        else:
            topology.destroy()


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


def user_rows(engine: sa.Engine, table: str, user_id: str) -> list:
    """A user's rows in an orders table the sink writes ([] until the sink has created it)."""
    with engine.connect() as conn:
        try:
            return conn.execute(sa.text(f"SELECT * FROM {table} WHERE user_id = :u"), {"u": user_id}).all()
        except sa.exc.ProgrammingError:
            return []


def wait_for_user_rows(engine: sa.Engine, table: str, user_id: str, count: int, timeout: float = 60) -> list:
    """Poll until the user has exactly `count` rows in the table; return them."""
    def complete():
        rows = user_rows(engine, table, user_id)
        return rows if len(rows) == count else None
    return wait_until(complete, timeout=timeout, what=f"{count} rows of {user_id} in {table}")


def consumer_lag(bootstrap: str, group: str, topic: str) -> int:
    """Records of topic that group has not committed yet, summed over partitions."""
    from confluent_kafka import Consumer

    from bus.lag import group_offsets
    # Reading committed offsets does not join the group (no subscribe()).
    probe = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False})
    try:
        offsets = group_offsets(probe, topic, timeout=10) or {}  # no topic yet: nothing to consume
        return sum(end - position for position, end in offsets.values())
    finally:
        probe.close()


def read_topic(bootstrap: str, topic: str, count: int | None = None, timeout: float = 30) -> list:
    """Every message of a topic, from the start of each partition to its end (bus.topic_reader).

    With `count`, waits (up to `timeout`) until the topic holds that many, then reads once more a
    second later (more is a bug the caller should see); without, a missing topic is empty."""
    from bus.topic_reader import NoSuchTopic, read_range
    client = {"bootstrap.servers": bootstrap}

    def read() -> list:
        try:
            return list(read_range(client, topic, timeout=timeout))
        except NoSuchTopic:
            return []
    if count is None:
        return read()
    wait_until(lambda: len(read()) >= count, timeout=timeout, interval=0.5, what=f"{count} messages in {topic}")
    time.sleep(1)
    return read()


def add_product(settings: Settings, prefix: str, stock: int = 1_000_000_000, unit_price: int = 100) -> str:
    """A product of the test's own in the Catalog (by default with stock no load can exhaust)."""
    product_id = f"{prefix}-{uuid.uuid4().hex[:8]}"
    engine = sa.create_engine(settings.mariadb_url(settings.catalog_db))
    try:
        with engine.begin() as conn:
            conn.execute(sa.text("INSERT INTO products (product_id, product_name, stock, unit_price) "
                                 "VALUES (:p, :p, :s, :u)"), {"p": product_id, "s": stock, "u": unit_price})
    finally:
        engine.dispose()
    return product_id


class Producer:
    """One confluent-kafka producer; send() blocks until the record is acknowledged."""

    def __init__(self, bootstrap: str):
        from confluent_kafka import Producer as KafkaProducer
        self._producer = KafkaProducer({"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 0,
                                        "message.max.bytes": 4_000_000})

    def send(self, topic: str, value, key: str | None = None, timeout: float = 15, headers=None):
        """Produce value (a dict is sent as JSON; headers: (name, bytes) pairs) and return the
        delivered message."""
        if isinstance(value, dict):
            value = json.dumps(value)
        outcome = {}

        def on_delivery(err, msg):
            outcome["err"], outcome["msg"] = err, msg

        self._producer.produce(topic, value=value, key=key, headers=headers, on_delivery=on_delivery)
        self._producer.flush(timeout)
        if "msg" not in outcome:
            pytest.fail(f"record to {topic} not delivered within {timeout}s")
        if outcome["err"] is not None:
            pytest.fail(f"record to {topic} failed: {outcome['err']}")
        return outcome["msg"]

    def close(self):
        self._producer.flush(10)


# --- private copies of the sink connector -------------------------------------------------

def create_private_sink(settings: Settings, overrides: dict | None = None,
                        base: str | Path = register.DEFAULT_CONFIG, prefix: str = "test") -> dict:
    """Register a copy of `base` with its own name, topic, table and dead-letter topic, and wait
    until it RUNS; returns the registered config. `overrides` (Connect keys) win."""
    suffix = uuid.uuid4().hex[:10]
    _, config = register.load(base, settings)
    config.update({
        "name": f"{prefix}-sink-{suffix}",
        "topics": f"{prefix}-orders-{suffix}",
        "collection.name.format": f"{prefix}_orders_{suffix}",
        "errors.deadletterqueue.topic.name": f"{prefix}-orders-{suffix}-dlq",
    })
    config.update(overrides or {})
    register.register(config, settings, wait=True, timeout=120)
    return config


def remove_private_sink(settings: Settings, config: dict) -> None:
    """Delete the connector, its table, its topics and its consumer group."""
    from confluent_kafka.admin import AdminClient

    register.delete(settings.connect_url, config["name"])
    engine = sa.create_engine(settings.mariadb_url(settings.orders_db))
    with engine.begin() as conn:
        conn.execute(sa.text(f"DROP TABLE IF EXISTS `{config['collection.name.format']}`"))
    engine.dispose()
    admin = AdminClient({"bootstrap.servers": settings.kafka_bootstrap})
    topics = [config["topics"], config["errors.deadletterqueue.topic.name"]]
    for future in admin.delete_topics(topics, operation_timeout=30).values():
        try:
            future.result(timeout=30)
        except Exception:  # never created (no bad record): nothing to clean
            pass
    group = f"connect-{config['name']}"
    try:
        admin.delete_consumer_groups([group])[group].result(timeout=30)
    except Exception:  # the group may still be settling after the delete; harmless
        pass


# --- load and the sync ledger, for the fault tests -------------------------------------

class OrderLoad:
    """Client threads placing 1-unit orders round-robin on the Order instances until stopped.

    `acked` holds the order ids that CreateOrder acknowledged; anything else is counted by code."""

    def __init__(self, addresses: list[str], product_id: str, clients: int = 4, user_id: str | None = None):
        import threading
        self.addresses, self.product_id, self.clients = addresses, product_id, clients
        self.user_id = user_id or f"load-{uuid.uuid4().hex[:8]}"
        self.acked: list[str] = []
        self.acked_at: list[float] = []  # time.monotonic() of each acknowledgement
        self.refused: dict[str, int] = {}
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads = [threading.Thread(target=self._run, args=(i,), daemon=True) for i in range(clients)]

    def __enter__(self):
        for t in self._threads:
            t.start()
        return self

    def __exit__(self, *exc):
        self.stop()

    def stop(self):
        self._stop.set()
        for t in self._threads:
            t.join(30)

    def longest_pause(self, start: float, end: float) -> float:
        """The longest time between start and end (time.monotonic()) in which no order was acknowledged."""
        with self._lock:
            times = sorted(t for t in self.acked_at if start < t < end)
        edges = [start, *times, end]
        return max(b - a for a, b in zip(edges, edges[1:]))

    def _run(self, index: int):
        import grpc

        from ordersync.order.v1 import order_service_pb2, order_service_pb2_grpc
        channels = [grpc.insecure_channel(a) for a in self.addresses]
        stubs = [order_service_pb2_grpc.OrderServiceStub(c) for c in channels]
        n = index
        while not self._stop.is_set():
            stub = stubs[n % len(stubs)]
            n += 1
            try:
                reply = stub.CreateOrder(order_service_pb2.CreateOrderRequest(
                    user_id=self.user_id, product_id=self.product_id, qty=1,
                    request_id=str(uuid.uuid4())), timeout=5)
            except grpc.RpcError as e:
                with self._lock:
                    self.refused[e.code().name] = self.refused.get(e.code().name, 0) + 1
                self._stop.wait(0.2)
                continue
            with self._lock:
                self.acked.append(reply.order.order_id)
                self.acked_at.append(time.monotonic())
        for c in channels:
            c.close()


def stock_of(settings: Settings, product_id: str) -> int:
    """A product's stock in the Catalog's table."""
    engine = sa.create_engine(settings.mariadb_url(settings.catalog_db))
    try:
        with engine.connect() as conn:
            return conn.execute(sa.text("SELECT stock FROM products WHERE product_id = :p"),
                                {"p": product_id}).scalar()
    finally:
        engine.dispose()


def settled_ledger(settings: Settings, acked: list[str], product_id: str, stock_before: int,
                   timeout: float) -> dict:
    """sync_ledger once every acknowledged order is in the table and the stock, or at the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        ledger = sync_ledger(settings, acked, product_id, stock_before)
        if (ledger["lost"] == 0 and ledger["missing"] == 0) or time.monotonic() > deadline:
            return ledger
        time.sleep(1)


def ledger_row(label: str, ledger: dict, refused: dict) -> str:
    """One row of a fault table, as the fault tests print it."""
    return (f"{label:26} | acked {ledger['acked']:5} | lost {ledger['lost']} | dup {ledger['duplicated']} | "
            f"missing {ledger['missing']} | double {ledger['double']} | refused {sum(refused.values()):4}")


def product_ledger(settings: Settings, product_id: str) -> tuple[list[str], dict[str, int], int]:
    """A product as both sides hold it: the order ids of its rows in the orders table (repeats
    kept), {order id: qty} of its applied orders, and its stock."""
    orders = sa.create_engine(settings.mariadb_url(settings.orders_db))
    catalog = sa.create_engine(settings.mariadb_url(settings.catalog_db))
    try:
        with orders.connect() as conn:
            rows = conn.execute(sa.text(f"SELECT order_id FROM `{settings.orders_table}` WHERE product_id = :p"),
                                {"p": product_id}).scalars().all()
        with catalog.connect() as conn:
            applied = dict(conn.execute(sa.text("SELECT order_id, qty FROM applied_orders WHERE product_id = :p"),
                                        {"p": product_id}).all())
            stock = conn.execute(sa.text("SELECT stock FROM products WHERE product_id = :p"),
                                 {"p": product_id}).scalar()
    finally:
        orders.dispose()
        catalog.dispose()
    return list(rows), applied, stock


def sync_ledger(settings: Settings, acked: list[str], product_id: str, stock_before: int) -> dict:
    """Acknowledged orders against the orders table and the Catalog's stock (all orders of 1 unit)."""
    rows, applied, stock = product_ledger(settings, product_id)
    acked_set, row_set = set(acked), set(rows)
    return {
        "acked": len(acked_set),
        "lost": len(acked_set - row_set),
        "duplicated": len(rows) - len(row_set),
        "missing": len(acked_set - set(applied)),
        # Every order is 1 unit: a stock drop beyond the applied orders is a decrement applied twice.
        "double": max(0, stock_before - stock - len(applied)),
        "extra_rows": len(row_set - acked_set),  # published but not acknowledged (e.g. a timed-out call)
    }


class Scraped(dict):
    """A service's metrics, one scrape: {(sample name, frozenset of labels): value}."""

    def value(self, name: str, **labels) -> float | None:
        return self.get((name, frozenset(labels.items())))

    def samples(self, name: str) -> dict[frozenset, float]:
        return {labels: v for (n, labels), v in self.items() if n == name}


def scrape(part: Part) -> Scraped:
    """GET /metrics of a service part: on METRICS_PORT (private stacks), else its port + the offset."""
    port = int(part.env.get("METRICS_PORT") or part.port + int(part.env["METRICS_PORT_OFFSET"]))
    with urllib.request.urlopen(f"http://{part.host}:{port}/metrics", timeout=10) as reply:
        text = reply.read().decode()
    return Scraped({(s.name, frozenset(s.labels.items())): s.value
                    for family in text_string_to_metric_families(text) for s in family.samples})


def envelope_check(envelopes: list[bytes]) -> list[dict]:
    """Each envelope (one line of bytes) through Kafka Connect's real JsonConverter
    (tests/java/EnvelopeCheck.java): its answer per envelope, {"value": ..., "envelope": ...} when
    the converter reads it (and "error" too when it cannot write it back), {"error": ...} when not.
    Needs Java 17 and the jars of `make jars`; missing tools fail the test rather than skip it."""
    assert shutil.which("java"), "java not found"
    assert list(KAFKA_LIBS.glob("connect-json-*.jar")), f"no Kafka jars in {KAFKA_LIBS}: run `make jars`"
    assert all(b"\n" not in e for e in envelopes), "one envelope per line"
    out = subprocess.run(["java", "-cp", f"{KAFKA_LIBS}/*", str(ROOT / "tests" / "java" / "EnvelopeCheck.java")],
                         input=b"\n".join(envelopes) + b"\n", capture_output=True, timeout=120, check=True)
    # split("\n"), not splitlines(): strings may hold U+2028 and friends, raw.
    answers = [json.loads(line) for line in out.stdout.decode().split("\n") if line]
    assert len(answers) == len(envelopes), out.stderr.decode()
    return answers


# --- the course's envelope ------------------------------------------------------------------

# The course's hand-written envelope, as its note has it (part 2, "Using a single database with
# Kafka Connect"): the demo publishes it too.
COURSE_ENVELOPE = (ROOT / "demo" / "course-envelope.json").read_text()
KEY = ("order_id",)


def corrected_course() -> dict:
    env = json.loads(COURSE_ENVELOPE)
    fields = env["schema"]["fields"]
    fields[0]["type"], fields[3]["field"], fields[5]["field"] = "string", "qty", "unit_price"
    return env


def table_and_stock(settings: Settings, product_id: str, stock_before: int) -> dict:
    """Whether the orders table and the Catalog's stock agree on every order of a product: the
    order ids only in one of them, and how far the stock fell beyond the applied orders' units."""
    rows, applied, stock = product_ledger(settings, product_id)
    return {"rows": len(set(rows)), "only_table": len(set(rows) - set(applied)),
            "only_stock": len(set(applied) - set(rows)), "stock_drop_beyond": (stock_before - stock) - sum(applied.values())}


# --- the doctor's database, in memory -------------------------------------------------------

def orders_table_columns() -> list:
    """The columns of the orders table stack.schema creates, as ops.doctor reads them from
    information_schema (tests/integration/test_doctor_truth.py holds them to the real table)."""
    from ops.doctor import Column
    return [*(Column(name, "varchar", "varchar(64)", False, False, 64) for name in ("order_id", "user_id", "product_id")),
            *(Column(name, "int", "int(11)", False, False, None, 10, 0) for name in ("qty", "unit_price", "total_price")),
            Column("created_at", "datetime", "datetime(3)", False, False)]


def doctor_database(products=("CATALOG-001",), tables: dict | None = None, first_events=None):
    """An ops.doctor.Database in memory: the catalog's products, the columns of each table of the
    orders database (default: the orders table only), the first accepted event of each order id
    (default: gate.verdict.first_events_in_memory())."""
    from ops.doctor import Database
    from ordersync.gate.verdict import first_events_in_memory
    tables = {"orders": orders_table_columns()} if tables is None else tables
    return Database(lambda ids: ids & set(products), first_events or first_events_in_memory(),
                    lambda table: tables.get(table, []))
