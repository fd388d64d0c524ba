"""A product as both sides hold it, counted against the orders acknowledged: the rows of the
orders table the sink writes, the Catalog's applied orders and its stock."""

import time

import sqlalchemy as sa

from ordersync.config import Settings


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


def settled_ledger(settings: Settings, acked: list[str], product_id: str, stock_before: int,
                   timeout: float) -> dict:
    """sync_ledger once every acknowledged order is in the table and the stock, or at the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        ledger = sync_ledger(settings, acked, product_id, stock_before)
        if (ledger["lost"] == 0 and ledger["missing"] == 0) or time.monotonic() > deadline:
            return ledger
        time.sleep(1)


def table_and_stock(settings: Settings, product_id: str, stock_before: int) -> dict:
    """Whether the orders table and the Catalog's stock agree on every order of a product: the
    order ids only in one of them, and how far the stock fell beyond the applied orders' units."""
    rows, applied, stock = product_ledger(settings, product_id)
    return {"rows": len(set(rows)), "only_table": len(set(rows) - set(applied)),
            "only_stock": len(set(applied) - set(rows)), "stock_drop_beyond": (stock_before - stock) - sum(applied.values())}
