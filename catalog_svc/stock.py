"""The catalog's database: products with their stock, and the orders already applied to it."""

import logging

import pymysql
import sqlalchemy as sa

from bus.failures import PermanentError, TransientError

log = logging.getLogger("catalog_svc")

metadata = sa.MetaData()

products = sa.Table(
    "products", metadata,
    sa.Column("product_id", sa.String(64), primary_key=True),
    sa.Column("product_name", sa.String(128), nullable=False),
    sa.Column("stock", sa.Integer, nullable=False),
    sa.Column("unit_price", sa.Integer, nullable=False),
)

# One row per order event applied: its primary key makes a redelivered event a no-op.
applied_orders = sa.Table(
    "applied_orders", metadata,
    sa.Column("order_id", sa.String(64), primary_key=True),
    sa.Column("product_id", sa.String(64), nullable=False),
    sa.Column("qty", sa.Integer, nullable=False),
    sa.Column("applied_at", sa.DateTime, nullable=False, server_default=sa.func.now()),
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


# MariaDB error codes that pass with time: the server comes back, a lock is released.
TRANSIENT_DB_ERRORS = {
    1040: "too many connections",
    1053: "server shutdown in progress",
    1205: "lock wait timeout",
    1213: "deadlock",
    1927: "connection killed",
    2002: "cannot connect",
    2003: "cannot connect",
    2006: "server has gone away",
    2013: "lost connection",
    4031: "disconnected by the server",
}


def create_engine(url: str) -> sa.Engine:
    return sa.create_engine(url, pool_pre_ping=True, pool_recycle=3600)


def prepare(engine: sa.Engine) -> None:
    """Create the tables and add the seed products that are missing (existing stock is kept)."""
    metadata.create_all(engine)
    with engine.begin() as conn:
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
    """Lower the product's stock by qty, once per order id.

    The applied-order row and the stock change commit in one transaction, so a
    redelivered event changes nothing. Returns False when it was applied before
    (with the same product and quantity).

    Raises PermanentError for an order that can never be applied: a quantity
    below 1 (no event may raise stock), an unknown product, an order id applied
    before with other content, data the table cannot hold. Raises TransientError
    when the database is unreachable, busy or restarting (see db_failure).
    """
    if qty < 1:
        raise PermanentError(f"order {order_id}: qty must be at least 1, got {qty}")
    try:
        return _apply_once(engine, order_id, product_id, qty)
    except sa.exc.DBAPIError as e:
        raise db_failure(e) from e


def _apply_once(engine, order_id, product_id, qty):
    try:
        with engine.begin() as conn:
            conn.execute(applied_orders.insert().values(order_id=order_id, product_id=product_id, qty=qty))
            updated = conn.execute(
                products.update().where(products.c.product_id == product_id)
                .values(stock=products.c.stock - qty))
            if updated.rowcount != 1:
                raise UnknownProduct(f"order {order_id} names unknown product {product_id!r}")
    except sa.exc.IntegrityError:
        with engine.connect() as conn:
            earlier = conn.execute(sa.select(applied_orders.c.product_id, applied_orders.c.qty)
                                   .where(applied_orders.c.order_id == order_id)).first()
        if earlier is None:  # not the order id's key: another constraint, see db_failure
            raise
        if tuple(earlier) != (product_id, qty):
            raise OrderIdReused(f"order_id {order_id} reused with different content: applied as "
                                f"{earlier[1]} x {earlier[0]}, now {qty} x {product_id}") from None
        log.info("order %s: already applied, skipping the redelivered event", order_id)
        return False
    log.info("order %s: stock of %s lowered by %d", order_id, product_id, qty)
    return True


def db_failure(error: sa.exc.DBAPIError) -> Exception:
    """What a database error means for an order event: TransientError if it passes with
    time, PermanentError for data that can never be stored, else the error itself (which
    the consumer treats as transient: a stuck consumer shows, a lost event does not)."""
    code = error.orig.args[0] if error.orig is not None and error.orig.args else None
    if (error.connection_invalidated or code in TRANSIENT_DB_ERRORS
            or isinstance(error.orig, pymysql.err.InterfaceError)):
        reason = TRANSIENT_DB_ERRORS.get(code, "connection lost") if isinstance(code, int) else "connection lost"
        return TransientError(f"catalog database: {reason}: {error.orig}")
    if isinstance(error, (sa.exc.DataError, sa.exc.IntegrityError)):
        return PermanentError(f"catalog database refuses the order: {error.orig}")
    return error
