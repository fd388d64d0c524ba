"""The stack's tables as the tests read and seed them: a user's rows in an orders table the sink
writes, a product of the test's own in the Catalog, a product's stock."""

import uuid

import sqlalchemy as sa

from ordersync.config import Settings


def user_rows(engine: sa.Engine, table: str, user_id: str) -> list:
    """A user's rows in an orders table the sink writes ([] until the sink has created it)."""
    with engine.connect() as conn:
        try:
            return conn.execute(sa.text(f"SELECT * FROM {table} WHERE user_id = :u"), {"u": user_id}).all()
        except sa.exc.ProgrammingError:
            return []


def add_product(settings: Settings, prefix: str, stock: int = 1_000_000_000, unit_price: int = 100,
                product_id: str | None = None) -> str:
    """A product of the test's own in the Catalog (by default with stock no load can exhaust);
    `product_id`: one the test named before (say, in an order refused for the lack of it)."""
    product_id = product_id or f"{prefix}-{uuid.uuid4().hex[:8]}"
    engine = sa.create_engine(settings.mariadb_url(settings.catalog_db))
    try:
        with engine.begin() as conn:
            conn.execute(sa.text("INSERT INTO products (product_id, product_name, stock, unit_price) "
                                 "VALUES (:p, :p, :s, :u)"), {"p": product_id, "s": stock, "u": unit_price})
    finally:
        engine.dispose()
    return product_id


def stock_of(settings: Settings, product_id: str) -> int:
    """A product's stock in the Catalog's table."""
    engine = sa.create_engine(settings.mariadb_url(settings.catalog_db))
    try:
        with engine.connect() as conn:
            return conn.execute(sa.text("SELECT stock FROM products WHERE product_id = :p"),
                                {"p": product_id}).scalar()
    finally:
        engine.dispose()
