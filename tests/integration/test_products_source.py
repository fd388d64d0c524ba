"""The Debezium MariaDB source, on the real worker and MariaDB's binlog: every change of
catalog_db.products becomes the row's new state on the compacted topic catalog.products, keyed by
product_id, as an envelope the bus's own decoder reads as ordersync.catalog.v1.Product; a delete
becomes a tombstone. The stack's gate on it is its completed snapshot, not RUNNING."""
import dataclasses
import time
import uuid

import pytest

from connect import register
from ordersync.catalog.v1.catalog_service_pb2 import Product
from stack import cdc
from stack.process import StackError
from tests.support.products import (
    as_root,
    by_key,
    change_product,
    private_source,
    product_records,
    remove_private_source,
    table_products,
    topic_config,
)
from tests.support.tables import add_product
from tests.support.waiting import wait_until

SETTLE_S = 60


def latest(settings, product_id: str, topic: str = register.PRODUCTS_TOPIC):
    """The records of one key on the topic, in order."""
    return by_key(product_records(settings, topic)).get(product_id, [])


@pytest.fixture
def private_sources(stack):
    """Factory: make(user) -> a private copy of the source connector (not registered), removed
    with its topics after the test."""
    made = []

    def make(user: str) -> dict:
        made.append(private_source(stack, user))
        return made[-1]

    yield make
    for document in made:
        remove_private_source(stack, document)


def test_snapshot_gives_one_record_per_existing_product(stack, private_sources):
    """A new copy of the source snapshots the table: one record per product, keyed by its id,
    equal to its row. Registered through the stack's own gate, so it returns once the snapshot
    is committed."""
    document = private_sources(cdc.account(stack).mariadb_user)
    began = time.monotonic()
    cdc.source_up(cdc.account(stack), document, timeout=stack.stack_startup_timeout)
    print(f"\nsnapshot committed {time.monotonic() - began:.1f}s after registering")
    rows = table_products(stack)
    records = product_records(stack, document["config"]["_products_topic"])
    assert sorted(r.key for r in records) == sorted(rows), "not one record per product"
    for record in records:
        assert record.product == rows[record.key], record


def test_an_empty_table_is_gated_on_running_and_its_first_row_captured(stack, private_sources):
    """A table with no row has no snapshot to commit: the gate returns once the copy is RUNNING
    (not after the whole timeout), and the first row inserted then reaches its topic."""
    table = f"empty_{uuid.uuid4().hex[:8]}"
    as_root(stack, f"CREATE TABLE `{stack.catalog_db}`.`{table}` LIKE `{stack.catalog_db}`.products")
    try:
        document = private_sources(cdc.account(stack).mariadb_user)
        config = document["config"]
        prefix = config["topic.prefix"]
        config.update({"table.include.list": f"${{CATALOG_DB}}.{table}",
                       "transforms.route.regex": f"{prefix}\\.${{CATALOG_DB}}\\.{table}"})
        began = time.monotonic()
        cdc.source_up(cdc.account(stack), document, timeout=stack.stack_startup_timeout)
        gated = time.monotonic() - began
        print(f"\nempty table gated {gated:.1f}s after registering")
        assert gated < stack.stack_startup_timeout / 2
        as_root(stack, f"INSERT INTO `{stack.catalog_db}`.`{table}` (product_id, product_name, stock, unit_price) "
                       "VALUES ('FIRST-ROW', 'first', 3, 250)")
        records = wait_until(lambda: latest(stack, "FIRST-ROW", config["_products_topic"]), timeout=SETTLE_S,
                             what="the first row on the copy's topic")
        assert records[-1].product == Product(product_id="FIRST-ROW", product_name="first", stock=3, unit_price=250)
    finally:
        as_root(stack, f"DROP TABLE `{stack.catalog_db}`.`{table}`")


def test_the_stack_topic_holds_every_product_as_its_row(stack):
    """The stack's own connector: the last record of every product is its row (after settling),
    and no product of the table is missing."""
    def agree():
        rows, keyed = table_products(stack), by_key(product_records(stack))
        return rows and all(keyed.get(p) and keyed[p][-1].product == row for p, row in rows.items())
    wait_until(agree, timeout=SETTLE_S, what="every product's last record on catalog.products to be its row")
    for record in product_records(stack):
        if record.product is not None:
            assert record.product.product_id == record.key


def test_a_price_update_gives_the_new_state(stack):
    product_id = add_product(stack, "CDC", stock=7, unit_price=100)
    wait_until(lambda: latest(stack, product_id), timeout=SETTLE_S, what=f"the insert of {product_id}")
    change_product(stack, "UPDATE products SET unit_price = 250 WHERE product_id = :p", product_id)

    records = wait_until(lambda: [r for r in latest(stack, product_id) if r.product and r.product.unit_price == 250],
                         timeout=SETTLE_S, what=f"the new price of {product_id}")
    assert records[-1].product == Product(product_id=product_id, product_name=product_id, stock=7, unit_price=250)
    time.sleep(2)  # settled: the insert, then the update, nothing else
    assert [r.product.unit_price for r in latest(stack, product_id) if r.product] == [100, 250]


def test_a_delete_gives_a_tombstone(stack):
    product_id = add_product(stack, "CDC", stock=1)
    wait_until(lambda: latest(stack, product_id), timeout=SETTLE_S, what=f"the insert of {product_id}")
    change_product(stack, "DELETE FROM products WHERE product_id = :p", product_id)

    records = wait_until(lambda: [r for r in latest(stack, product_id) if r.product is None],
                         timeout=SETTLE_S, what=f"a tombstone for {product_id}")
    time.sleep(2)
    records = latest(stack, product_id)
    assert [r.product is None for r in records] == [False, True], records  # the row, then one tombstone


def test_the_topic_is_compacted(stack):
    assert topic_config(stack, register.PRODUCTS_TOPIC, "cleanup.policy") == "compact"
    assert topic_config(stack, stack.orders_topic, "cleanup.policy") == "delete"  # the control


def test_a_missing_grant_is_refused_by_name_and_the_grant_makes_it_pass(stack, private_sources):
    """Without SELECT on the table the connector is RUNNING and captures nothing: the snapshot gate
    sees no committed snapshot, and the stack's registration refuses it at once, naming the grant.
    Control: the same account with the grant passes the same gate."""
    user, password = "cdc_test_nogrant", stack.db_password.replace("'", "''")
    as_root(stack, f"CREATE USER IF NOT EXISTS '{user}'@'%' IDENTIFIED BY '{password}'",
            f"GRANT REPLICATION SLAVE, BINLOG MONITOR ON *.* TO '{user}'@'%'")
    try:
        account = dataclasses.replace(cdc.account(stack), mariadb_user=user)
        ungranted = private_sources(user)
        register.register(ungranted, account, timeout=60)  # RUNNING ...
        with pytest.raises(register.ConnectorError, match="no completed snapshot"):
            register.wait_snapshot_done(stack.connect_url, ungranted["name"], timeout=15)  # ... and nothing

        began = time.monotonic()
        with pytest.raises(StackError, match=f"{user} lacks SELECT on {stack.catalog_db}.products"):
            cdc.source_up(account, private_sources(user), timeout=60)
        print(f"\nrefused in {time.monotonic() - began:.1f}s")
        assert time.monotonic() - began < 60

        as_root(stack, f"GRANT SELECT ON {stack.catalog_db}.* TO '{user}'@'%'")
        granted = private_sources(user)
        cdc.source_up(account, granted, timeout=stack.stack_startup_timeout)
        assert product_records(stack, granted["config"]["_products_topic"])
    finally:
        as_root(stack, f"DROP USER IF EXISTS '{user}'@'%'")
