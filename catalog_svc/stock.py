"""The catalog's database: products with their stock, and the orders already applied to it."""

import collections
import dataclasses
import logging
import typing

import sqlalchemy as sa
from sqlalchemy.dialects import mysql

from bus.failures import PermanentError
from ordersync.contract import sql
from ordersync.serving import db_failures

log = logging.getLogger("catalog_svc")

metadata = sa.MetaData()

products = sa.Table(
    "products", metadata,
    sa.Column("product_id", sql.id_type(), primary_key=True),
    sa.Column("product_name", sa.String(128), nullable=False),
    sa.Column("stock", sa.Integer, nullable=False),
    sa.Column("unit_price", sa.Integer, nullable=False),
)

# One row per order event applied: its primary key makes a redelivered event a no-op.
applied_orders = sa.Table(
    "applied_orders", metadata,
    sa.Column("order_id", sql.id_type(), primary_key=True),
    sa.Column("product_id", sql.id_type(), nullable=False),
    sa.Column("qty", sa.Integer, nullable=False),
    # When the stock was lowered, by MariaDB's clock to the millisecond: order created -> stock
    # applied is applied_at - the order's created_at (bench/load.py, the journey of one order).
    sa.Column("applied_at", sa.DateTime().with_variant(mysql.DATETIME(fsp=3), "mysql", "mariadb"), nullable=False,
              server_default=sa.text("CURRENT_TIMESTAMP")),
    # Where the event was on the accepted topic: once Kafka's log start of its partition is past
    # it, it can never be delivered again, and its row is trimmed (catalog_svc/retention.py).
    # NULL in rows applied before these columns existed: those are kept.
    sa.Column("accepted_partition", sa.Integer, nullable=True),
    sa.Column("accepted_offset", sa.BigInteger, nullable=True),
    sa.Index("ix_applied_orders_origin", "accepted_partition", "accepted_offset"),
)

SEED_PRODUCTS = [
    {"product_id": "CATALOG-001", "product_name": "Berlin", "stock": 100, "unit_price": 1500},
    {"product_id": "CATALOG-002", "product_name": "Tokyo", "stock": 110, "unit_price": 1000},
    {"product_id": "CATALOG-003", "product_name": "Stockholm", "stock": 120, "unit_price": 2000},
]


class UnknownProduct(PermanentError):
    """An order event names a product the catalog does not have."""


class OrderIdReused(PermanentError):
    """An order id already applied comes again with another product or quantity."""


def create_engine(url: str, connections: int = 5) -> sa.Engine:
    """`connections`: as many as the process uses at once (calls served, plus its consumer), so
    that none opens a connection of its own per use (SQLAlchemy's overflow connections)."""
    return sa.create_engine(url, pool_pre_ping=True, pool_recycle=3600, pool_size=connections, max_overflow=0)


def prepare(engine: sa.Engine) -> None:
    """Create the tables and add the seed products that are missing (existing stock is kept)."""
    metadata.create_all(engine)
    with engine.begin() as conn:
        if engine.dialect.name in ("mysql", "mariadb"):
            # To the millisecond (the unit tests' SQLite has no fractions); older tables kept seconds.
            # Asked first: an ALTER may copy the whole table, at every start.
            precision = conn.exec_driver_sql(
                "SELECT datetime_precision, column_default FROM information_schema.columns WHERE table_schema = "
                "DATABASE() AND table_name = 'applied_orders' AND column_name = 'applied_at'").one()
            if tuple(precision) != (3, "current_timestamp(3)"):
                conn.exec_driver_sql("ALTER TABLE applied_orders MODIFY applied_at DATETIME(3) NOT NULL "
                                     "DEFAULT CURRENT_TIMESTAMP(3)")
            # Tables made before the retention: the origin columns and their index (no-ops after).
            conn.exec_driver_sql("ALTER TABLE applied_orders ADD COLUMN IF NOT EXISTS accepted_partition INT NULL, "
                                 "ADD COLUMN IF NOT EXISTS accepted_offset BIGINT NULL")
            conn.exec_driver_sql("CREATE INDEX IF NOT EXISTS ix_applied_orders_origin "
                                 "ON applied_orders (accepted_partition, accepted_offset)")
        have: set[str] = set(conn.execute(sa.select(products.c.product_id)).scalars())
        missing = [p for p in SEED_PRODUCTS if p["product_id"] not in have]
        if missing:
            conn.execute(products.insert(), missing)


def list_products(engine: sa.Engine) -> list[dict]:
    with engine.connect() as conn:
        return [dict(r) for r in conn.execute(sa.select(products).order_by(products.c.product_id)).mappings()]


def get_product(engine: sa.Engine, product_id: str) -> dict | None:
    with engine.connect() as conn:
        row = conn.execute(sa.select(products).where(products.c.product_id == product_id)).mappings().first()
    return dict(row) if row else None


def apply_order(engine: sa.Engine, order_id: str, product_id: str, qty: int) -> bool:
    """Lower the product's stock by qty, once per order id (apply_orders for one order).

    Returns False when it was applied before (with the same product and quantity);
    raises the PermanentError that apply_orders returns for it, or TransientError.
    """
    outcome = apply_orders(engine, [Order(order_id, product_id, qty)])
    if outcome.refused:
        raise outcome.refused[0]
    return outcome.applied == 1


class Order(typing.NamedTuple):
    order_id: str
    product_id: str
    qty: int
    # Where the event is on the accepted topic (None: not from the topic, e.g. a test's order).
    accepted_partition: int | None = None
    accepted_offset: int | None = None


@dataclasses.dataclass
class Outcome:
    applied: int = 0  # orders whose stock change was made now
    duplicates: int = 0  # orders applied before with the same content: nothing to do
    repeated: set[int] = dataclasses.field(default_factory=set)  # their indexes
    refused: dict[int, PermanentError] = dataclasses.field(default_factory=dict)  # index -> why


def apply_orders(engine: sa.Engine, orders: list[Order]) -> Outcome:
    """Lower the stock for a batch of orders, each once per order id, in one transaction.

    The applied-order rows and the stock changes commit together, so a redelivered
    batch changes nothing; a failed one changes nothing either and can be retried
    whole. One statement per product, not per order: a busy product's row is
    written once per batch.

    Refused, by index (never applied): a quantity below 1 (no event may raise
    stock), an unknown product, an order id applied before (or earlier in the
    batch) with other content. Raises PermanentError when the database refuses
    the batch as a whole (data the table cannot hold; the caller then applies the
    orders one at a time to find which), TransientError when the database is
    unreachable, busy or restarting (see ordersync.serving.db_failures).
    """
    outcome = Outcome()
    for i, order in enumerate(orders):
        if order.qty < 1:
            outcome.refused[i] = PermanentError(f"order {order.order_id}: qty must be at least 1, got {order.qty}")
    try:
        with engine.begin() as conn:
            _apply_in(conn, orders, outcome)
    except sa.exc.DBAPIError as e:
        raise db_failures.db_failure(e, "catalog database") from e
    log.info("%d orders applied, %d already applied, %d refused", outcome.applied, outcome.duplicates,
              len(outcome.refused))
    return outcome


def _apply_in(conn, orders, outcome):
    # Not locked (gap locks on random ids would make two members deadlock): if another member
    # applies one of these orders meanwhile (a rebalance overlap), the primary key refuses our
    # insert, the whole transaction rolls back, and one at a time they show as duplicates.
    seen = {row.order_id: (row.product_id, row.qty) for row in conn.execute(
        sa.select(applied_orders.c.order_id, applied_orders.c.product_id, applied_orders.c.qty)
        .where(applied_orders.c.order_id.in_({o.order_id for o in orders})))}
    known = set(conn.execute(sa.select(products.c.product_id).where(
        products.c.product_id.in_({o.product_id for o in orders}))).scalars())
    new_rows, lowered = [], collections.Counter()
    for i, order in enumerate(orders):
        if i in outcome.refused:
            continue
        earlier = seen.get(order.order_id)
        if earlier is not None:
            if earlier != (order.product_id, order.qty):
                outcome.refused[i] = OrderIdReused(
                    f"order_id {order.order_id} reused with different content: applied as "
                    f"{earlier[1]} x {earlier[0]}, now {order.qty} x {order.product_id}")
            else:
                outcome.duplicates += 1
                outcome.repeated.add(i)
            continue
        if order.product_id not in known:
            outcome.refused[i] = UnknownProduct(f"order {order.order_id} names unknown product {order.product_id!r}")
            continue
        seen[order.order_id] = (order.product_id, order.qty)
        new_rows.append(order._asdict())
        lowered[order.product_id] += order.qty
    if not new_rows:
        return
    conn.execute(applied_orders.insert(), new_rows)
    # In product order: two transactions lowering the same products lock them in one order.
    conn.execute(products.update().where(products.c.product_id == sa.bindparam("pid"))
                 .values(stock=products.c.stock - sa.bindparam("lowered")),
                 [{"pid": pid, "lowered": qty} for pid, qty in sorted(lowered.items())])
    outcome.applied = len(new_rows)


def trim_applied(engine: sa.Engine, log_starts: dict[int, int], chunk: int = 5000) -> int:
    """Delete the applied-order rows whose event lies below its partition's log start
    ({partition: Kafka's first offset of the accepted topic}): Kafka never delivers those again,
    so their rows dedupe nothing. In transactions of at most `chunk` rows, so that the applier's
    transactions never wait long behind one; returns the rows deleted. Raises TransientError for a
    database that is down or busy (the next round tries again)."""
    mariadb = engine.dialect.name in ("mysql", "mariadb")
    deleted = 0
    try:
        for partition, start in sorted(log_starts.items()):
            while True:
                below = applied_orders.delete().where(applied_orders.c.accepted_partition == partition,
                                                      applied_orders.c.accepted_offset < start)
                if mariadb:
                    below = below.with_dialect_options(mysql_limit=chunk)
                with engine.begin() as conn:
                    count = conn.execute(below).rowcount
                deleted += count
                if not mariadb or count < chunk:
                    break
    except sa.exc.DBAPIError as e:
        raise db_failures.db_failure(e, "catalog database") from e
    return deleted
