"""The products' change stream as the tests drive and read it: products changed by SQL, a topic
of the source connector read and decoded with the bus's own envelope decoder, a product waited for
in every Order instance's view, a price writer that keeps writing through a fault, private copies
of the source with accounts of their own."""

import dataclasses
import json
import random
import threading
import time
import uuid

import grpc
import pymysql
import sqlalchemy as sa
from confluent_kafka.admin import AdminClient

from bus import envelope
from connect import register
from ops.metrics import view_read_past
from ordersync.catalog.v1.catalog_service_pb2 import Product
from ordersync.config import Settings
from ordersync.order.v1 import order_service_pb2
from stack.topology import Topology
from tests.support.kafka import read_topic
from tests.support.waiting import wait_until


@dataclasses.dataclass(frozen=True)
class ProductRecord:
    """One record of a products topic: its key, the Product it carries (None: a tombstone)."""

    key: str
    product: Product | None
    partition: int
    offset: int


def product_records(settings: Settings, topic: str = register.PRODUCTS_TOPIC) -> list[ProductRecord]:
    """Every record of a products topic, each value decoded as ordersync.catalog.v1.Product by
    bus.envelope (which checks the schema's name and fields); a tombstone's product is None."""
    return [ProductRecord(m.key().decode(), None if m.value() is None else envelope.decode(m.value(), Product),
                          m.partition(), m.offset())
            for m in read_topic(settings.kafka_client(), topic)]


def by_key(records: list[ProductRecord]) -> dict[str, list[ProductRecord]]:
    """The records of each key in the order they were written (one key is in one partition)."""
    keyed: dict[str, list[ProductRecord]] = {}
    for record in sorted(records, key=lambda r: (r.partition, r.offset)):
        keyed.setdefault(record.key, []).append(record)
    return keyed


def wait_in_views(topology: Topology, product_id: str, timeout: float = 60) -> None:
    """Wait until every Order instance of `topology` has `product_id` in its product view (a product
    just added is NOT_FOUND there for about a second): its latest record on catalog.products is a
    product, seen at T; then each instance's view says (ordersync_product_view_behind_seconds,
    scraped at S) that it held all of the topic `behind` seconds before S. `behind` <= S - T means
    the view reached the high watermarks it asked for after T, so it applied that record. Only
    durations are compared, each on its own process's clock; nothing is placed or refused."""
    settings = topology.settings

    def on_topic() -> bool:
        latest = by_key(product_records(settings)).get(product_id)
        return bool(latest) and latest[-1].product is not None
    wait_until(on_topic, timeout=timeout, interval=0.2, what=f"{product_id} on {register.PRODUCTS_TOPIC}")
    seen = time.monotonic()
    for part in topology.orders:
        wait_until(lambda part=part: view_read_past(part, seen), timeout=timeout, interval=0.2,
                   what=f"{product_id} in the product view of {part.name}")


def table_products(settings: Settings) -> dict[str, Product]:
    """Every row of the Catalog's products table, as the Product the stream should carry."""
    engine = sa.create_engine(settings.mariadb_url(settings.catalog_db))
    try:
        with engine.connect() as conn:
            rows = conn.execute(sa.text("SELECT product_id, product_name, stock, unit_price FROM products")).all()
    finally:
        engine.dispose()
    return {r.product_id: Product(product_id=r.product_id, product_name=r.product_name, stock=r.stock,
                                  unit_price=r.unit_price) for r in rows}


def change_product(settings: Settings, sql: str, product_id: str, **values) -> None:
    """One statement on a product (:p is its id) in a transaction of its own."""
    engine = sa.create_engine(settings.mariadb_url(settings.catalog_db))
    try:
        with engine.begin() as conn:
            conn.execute(sa.text(sql), {"p": product_id, **values})
    finally:
        engine.dispose()


def as_root(settings: Settings, *statements: str) -> None:
    """Statements as MariaDB's root, through the stack's socket (accounts and grants)."""
    conn = pymysql.connect(unix_socket=str(settings.stack_dir / "run" / "mariadb.sock"), user="root")
    try:
        with conn.cursor() as cur:
            for statement in statements:
                cur.execute(statement)
        conn.commit()  # pymysql does not autocommit: an INSERT here would be rolled back
    finally:
        conn.close()


def private_source(settings: Settings, user: str) -> dict:
    """A copy of connect/products-source.json of its own (name, replica id, topics), reading as
    `user` with the stack's password; its products topic is config["_products_topic"]."""
    name = f"source-test-{uuid.uuid4().hex[:8]}"
    document = json.loads(register.PRODUCTS_SOURCE.read_text())
    config = document["config"]
    config.update({"database.user": user, "database.server.id": str(random.randrange(10_000, 60_000)),
                   "topic.prefix": name, "schema.history.internal.kafka.topic": f"{name}.schema-history",
                   "transforms.route.regex": f"{name}\\.${{CATALOG_DB}}\\.products",
                   "transforms.route.replacement": f"{name}.products", "_products_topic": f"{name}.products"})
    return {**document, "name": name, "config": config}


def remove_private_source(settings: Settings, document: dict) -> None:
    """Delete the copy and its topics."""
    register.delete(settings.connect_url, document["name"])
    name = document["name"]
    admin = AdminClient(settings.kafka_client())
    topics = [t for t in (f"{name}.products", f"{name}.schema-history")
              if t in admin.list_topics(timeout=10).topics]
    for future in admin.delete_topics(topics, operation_timeout=30).values() if topics else ():
        future.result()


def topic_config(settings: Settings, topic: str, key: str) -> str:
    """A topic's config value, as the broker's admin API describes it."""
    from confluent_kafka.admin import ConfigResource
    admin = AdminClient(settings.kafka_client())
    resource = ConfigResource(ConfigResource.Type.TOPIC, topic)
    return admin.describe_configs([resource])[resource].result(timeout=30)[key].value


class PriceWriter:
    """A thread that raises the prices of `products` one after another (price n+1 after n, one
    autocommit UPDATE each), through MariaDB outages: a statement whose outcome was lost is read
    back once the server answers again. `written[p]` is each product's committed prices in order."""

    def __init__(self, settings: Settings, products: list[str], pause_s: float = 0.02):
        self.settings, self.products, self.pause_s = settings, products, pause_s
        self.written: dict[str, list[int]] = {p: [] for p in products}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="price-writer", daemon=True)

    def __enter__(self) -> "PriceWriter":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(timeout=120)

    def _connect(self):
        s = self.settings
        while not self._stop.is_set():
            try:
                return pymysql.connect(host=s.mariadb_host, port=s.mariadb_port, user=s.mariadb_user,
                                       password=s.db_password, database=s.catalog_db, autocommit=True,
                                       connect_timeout=2, read_timeout=5, write_timeout=5)
            except pymysql.MySQLError:
                time.sleep(0.2)
        return None

    def _run(self) -> None:
        price = 1000
        conn = self._connect()
        while conn is not None and not self._stop.is_set():
            product = self.products[price % len(self.products)]
            price += 1
            try:
                with conn.cursor() as cur:
                    cur.execute("UPDATE products SET unit_price = %s WHERE product_id = %s", (price, product))
                self.written[product].append(price)
            except pymysql.MySQLError:
                conn.close()
                conn = self._connect()
                if conn is None:
                    return
                with conn.cursor() as cur:  # did the lost UPDATE commit?
                    cur.execute("SELECT unit_price FROM products WHERE product_id = %s", (product,))
                    if cur.fetchone()[0] == price:
                        self.written[product].append(price)
            time.sleep(self.pause_s)
        if conn is not None:
            conn.close()

    @property
    def count(self) -> int:
        return sum(len(prices) for prices in self.written.values())


def regressions(prices: list[int]) -> list[tuple[int, int]]:
    """Each (newer, older) where a price follows a higher one: what would send a view back."""
    return [(a, b) for a, b in zip(prices, prices[1:]) if b < a]


def order(stub, product_id: str, qty: int = 1):
    """CreateOrder for a user of its own: the reply, or the RpcError that refused it."""
    request = order_service_pb2.CreateOrderRequest(user_id=f"view-{uuid.uuid4().hex[:8]}", product_id=product_id,
                                                   qty=qty, request_id=str(uuid.uuid4()))
    try:
        return stub.CreateOrder(request, timeout=15)
    except grpc.RpcError as e:
        return e


def priced_at(stub, product_id: str, unit_price: int) -> bool:
    """Whether an order of `product_id` placed through `stub` now carries `unit_price`."""
    reply = order(stub, product_id)
    return isinstance(reply, order_service_pb2.CreateOrderResponse) and reply.order.unit_price == unit_price


@dataclasses.dataclass
class PriceLedger:
    """What a PriceWriter's prices became on catalog.products, once each product's last one is there."""

    written: int
    seen: dict[str, list[int]]  # each product's prices on the topic, in the order written there
    missed: dict[str, list[int]]  # committed, never on the topic
    unknown: dict[str, list[int]]  # on the topic, never committed
    backwards: dict[str, list[tuple[int, int]]]  # a price after a higher one: a view would go back
    settled_at: float  # time.monotonic() when every product's last price had arrived

    @property
    def replayed(self) -> int:
        return sum(len(prices) - len(set(prices)) for prices in self.seen.values())

    def line(self) -> str:
        return (f"written {self.written:5} | on the topic {sum(map(len, self.seen.values())):5} | replayed "
                f"{self.replayed} | missed {sum(map(len, self.missed.values()))} | backwards "
                f"{sum(map(len, self.backwards.values()))}")

    def assert_every_price_once_in_order(self) -> None:
        assert not any(self.missed.values()), self.missed
        assert not any(self.unknown.values()), self.unknown
        assert not any(self.backwards.values()), self.backwards


def settle_prices(settings: Settings, writer: PriceWriter, timeout: float, linger_s: float = 3) -> PriceLedger:
    """Wait until every product of `writer` has its last committed price as its last record on
    catalog.products, then `linger_s` more (a late replay would come then), and count what came
    (the writer's prices start at 1000: a product's first record, at its price of creation, is
    left out)."""
    products = writer.products

    def arrived():
        keyed = by_key(product_records(settings))
        return all(keyed.get(p) and keyed[p][-1].product and keyed[p][-1].product.unit_price == writer.written[p][-1]
                   for p in products)
    wait_until(arrived, timeout=timeout, interval=1, what="every product's last price on catalog.products")
    settled_at = time.monotonic()
    time.sleep(linger_s)
    keyed = by_key(product_records(settings))
    seen = {p: [r.product.unit_price for r in keyed[p] if r.product and r.product.unit_price >= 1000] for p in products}
    return PriceLedger(written=writer.count, seen=seen,
                       missed={p: sorted(set(writer.written[p]) - set(seen[p])) for p in products},
                       unknown={p: sorted(set(seen[p]) - set(writer.written[p])) for p in products},
                       backwards={p: regressions(seen[p]) for p in products}, settled_at=settled_at)
