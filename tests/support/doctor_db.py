"""The doctor's database, in memory: the catalog's products, the orders tables' columns and the
gate's first events, as ops.doctor.Database reads them."""

from ops.doctor import Column, Database
from ordersync.gate.verdict import first_events_in_memory


def orders_table_columns() -> list:
    """The columns of the orders table stack.schema creates, as ops.doctor reads them from
    information_schema (tests/integration/test_doctor_truth.py holds them to the real table)."""
    return [*(Column(name, "varchar", "varchar(64)", False, False, 64) for name in ("order_id", "user_id", "product_id")),
            *(Column(name, "int", "int(11)", False, False, None, 10, 0) for name in ("qty", "unit_price", "total_price")),
            Column("created_at", "datetime", "datetime(3)", False, False),
            Column("landed_at", "datetime", "datetime(3)", False, True)]  # set by MariaDB when the row lands


def doctor_database(products=("CATALOG-001",), tables: dict | None = None, first_events=None):
    """An ops.doctor.Database in memory: the catalog's products, the columns of each table of the
    orders database (default: the orders table only), the first accepted event of each order id
    (default: gate.verdict.first_events_in_memory())."""
    tables = {"orders": orders_table_columns()} if tables is None else tables
    return Database(lambda ids: ids & set(products), first_events or first_events_in_memory(),
                    lambda table: tables.get(table, []))
