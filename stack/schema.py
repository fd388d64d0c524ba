"""The tables of a stack, created before the connector and the services start.

The gate (gate.verdict) decides for every record before anything is written, so
the sink only ever writes what the Catalog applies. The orders table is created
here rather than by the sink's schema evolution so that it says the same rules
once more, in SQL, from the same constants (tests/conformance holds the two
together): should a record get past the gate that the rules refuse, the sink
stops on it, visibly, rather than write it.
- id columns compare byte for byte (ordersync.contract.sql), like Python;
- CHECK constraints hold the event rules (id format, qty and price ranges,
  total = qty x unit_price, created_at window);
- a foreign key to the catalog's products refuses an unknown product;
- a trigger keeps the first event of an order: a later event with the same
  order id and the same content changes nothing (not even created_at), one with
  other content is refused.
"""

import sqlalchemy as sa

from catalog_svc import stock
from ordersync.config import Settings
from ordersync.contract import event_rules, sql
from ordersync.gate import first_events
from stack.process import StackError

ID_COLUMNS = ("order_id", "user_id", "product_id")
# When the sink first wrote the row, by MariaDB's clock: the sink's upsert never names it, so an
# insert sets it and an update (a repeat of the same event) keeps it. Order created -> row landed
# is landed_at - created_at (bench/load.py; the journey of one order).
LANDED_AT = "landed_at DATETIME(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3)"


def orders_table_ddl(table: str, catalog_db: str) -> list[str]:
    """CREATE TABLE and trigger statements of an orders table (idempotent)."""
    for name in (table, catalog_db):
        if not sql.IDENTIFIER.fullmatch(name):
            raise ValueError(f"{name!r} is not a plain SQL identifier")
    ids = "".join(f"  CONSTRAINT `{name}_format` CHECK ({name} REGEXP '^{event_rules.ID_PATTERN}$'),\n"
                  for name in ID_COLUMNS)
    content = " AND ".join(f"NEW.{c} <=> OLD.{c}"
                           for c in ("user_id", "product_id", "qty", "unit_price", "total_price"))
    id_type = sql.ID_COLUMN_DDL
    return [
        f"""CREATE TABLE IF NOT EXISTS `{table}` (
  order_id {id_type} NOT NULL PRIMARY KEY,
  user_id {id_type} NOT NULL,
  product_id {id_type} NOT NULL,
  qty INT NOT NULL,
  unit_price INT NOT NULL,
  total_price INT NOT NULL,
  created_at DATETIME(3) NOT NULL,
  {LANDED_AT},
{ids}  CONSTRAINT qty_range CHECK (qty BETWEEN 1 AND {event_rules.MAX_QTY}),
  CONSTRAINT unit_price_range CHECK (unit_price BETWEEN {event_rules.MIN_UNIT_PRICE} AND {event_rules.MAX_INT32}),
  CONSTRAINT total_is_qty_times_unit_price CHECK (total_price = qty * unit_price),
  CONSTRAINT created_at_window CHECK (created_at >= '{event_rules.EARLIEST_CREATED_AT:%Y-%m-%d}'
                                      AND created_at < '{event_rules.LATEST_CREATED_AT:%Y-%m-%d}'),
  KEY user_created (user_id, created_at),
  CONSTRAINT `{table}_known_product` FOREIGN KEY (product_id) REFERENCES `{catalog_db}`.products (product_id)
)""",
        f"""CREATE TRIGGER IF NOT EXISTS `{table}_first_event_wins` BEFORE UPDATE ON `{table}` FOR EACH ROW
BEGIN
  IF NOT ({content}) THEN
    SIGNAL SQLSTATE '23000' SET MESSAGE_TEXT = 'order_id reused with different content: the first event wins';
  END IF;
  SET NEW.created_at = OLD.created_at;
END""",
    ]


def prepare(settings: Settings) -> None:
    """The Catalog's tables and seed products, the orders table that refers to them, the gate's table."""
    catalog = sa.create_engine(settings.mariadb_url(settings.catalog_db))
    try:
        stock.prepare(catalog)
        with catalog.begin() as conn:
            binary_ids(conn, settings.catalog_db, {"products": ["product_id"],
                                                   "applied_orders": ["order_id", "product_id"]})
    finally:
        catalog.dispose()
    orders = sa.create_engine(settings.mariadb_url(settings.orders_db))
    try:
        with orders.begin() as conn:
            create_table, create_trigger = orders_table_ddl(settings.orders_table, settings.catalog_db)
            conn.exec_driver_sql(create_table)
            checks = conn.execute(sa.text(
                "SELECT COUNT(*) FROM information_schema.check_constraints"
                " WHERE constraint_schema = DATABASE() AND table_name = :t"),
                {"t": settings.orders_table}).scalar()
            if not checks:
                raise StackError(
                    f"{settings.orders_db}.{settings.orders_table} exists but was not created by this "
                    "version (no CHECK constraints): it would accept records the Catalog refuses. "
                    "Rename or drop it, then run `make stack-up` again.")
            binary_ids(conn, settings.orders_db, {settings.orders_table: list(ID_COLUMNS)})
            conn.exec_driver_sql(f"ALTER TABLE `{settings.orders_table}` ADD COLUMN IF NOT EXISTS {LANDED_AT}")
            conn.exec_driver_sql(create_trigger)
    finally:
        orders.dispose()
    gate = sa.create_engine(settings.mariadb_url(settings.gate_db))
    try:
        first_events.prepare(gate)
    finally:
        gate.dispose()


def binary_ids(conn, database: str, tables: dict[str, list[str]]) -> list[str]:
    """Give the id columns of tables made by an older version (which compared ids ignoring case)
    the binary collation; returns the columns changed. A case-insensitive unique key stays unique."""
    changed = []
    for table, columns in tables.items():
        found = conn.execute(sa.text(
            "SELECT column_name, collation_name FROM information_schema.columns"
            " WHERE table_schema = :d AND table_name = :t"), {"d": database, "t": table}).all()
        stale = [name for name, collation in found if name in columns and collation != sql.ID_COLLATION]
        if not stale:
            continue
        # The foreign key from the orders table to the products: both sides change, one at a time.
        conn.exec_driver_sql("SET SESSION foreign_key_checks = 0")
        try:
            conn.exec_driver_sql(f"ALTER TABLE `{database}`.`{table}` " + ", ".join(
                f"MODIFY `{c}` {sql.ID_COLUMN_DDL} NOT NULL" for c in stale))
        finally:
            conn.exec_driver_sql("SET SESSION foreign_key_checks = 1")
        changed += [f"{database}.{table}.{c}" for c in stale]
    return changed
