"""The products' change stream on the secured cluster: the Debezium source runs in the two-worker
group as the Connect principal (its schema history's clients logged in too, exactly-once with its
own transactional ids), reads the binlog as catalog_cdc, and writes catalog.products, compacted
and replicated 3 times; no other service's principal may write it."""
import time
import uuid

import pytest
from confluent_kafka import KafkaError
from confluent_kafka.admin import AdminClient

from connect import register, rest
from ordersync.catalog.v1.catalog_service_pb2 import Product
from stack import accounts, cdc
from tests.support.faults import PartFault
from tests.support.kafka import produce_once
from tests.support.products import PriceWriter, by_key, change_product, product_records, settle_prices, topic_config
from tests.support.tables import add_product
from tests.support.waiting import wait_until

SOURCE = "products-source"


def test_a_price_update_reaches_catalog_products(cluster):
    """The source runs on the cluster (its task RUNNING, its snapshot committed by the stack's
    gate), and an UPDATE of a product's price becomes a record of catalog.products, keyed by the
    product's id, that the bus's decoder reads as the row's new Product."""
    s = cluster.settings
    _, status = rest.call(s.connect_url, "GET", f"/connectors/{SOURCE}/status")
    assert status["connector"]["state"] == "RUNNING" and [t["state"] for t in status["tasks"]] == ["RUNNING"], status
    _, config = rest.call(s.connect_url, "GET", f"/connectors/{SOURCE}/config")
    assert config["database.user"] == accounts.CDC.mariadb_user and "${file:" in config["database.password"], config
    assert "${file:" in config["schema.history.internal.producer.sasl.jaas.config"], "a password in the config"
    product = add_product(s, "CDC-CLUSTER", stock=7, unit_price=100)
    change_product(s, "UPDATE products SET unit_price = 4321 WHERE product_id = :p", product)

    def updated():
        records = by_key(product_records(s)).get(product, [])
        return records if records and records[-1].product == Product(
            product_id=product, product_name=product, stock=7, unit_price=4321) else None
    records = wait_until(updated, timeout=60, what=f"{product} at 4321 on {register.PRODUCTS_TOPIC}")
    assert [r.product.unit_price for r in records] == [100, 4321], records


def test_catalog_products_is_compacted_and_replicated(cluster):
    s = cluster.settings
    admin = AdminClient(s.kafka_client())
    topics = admin.list_topics(timeout=10).topics
    history = register.load(register.PRODUCTS_SOURCE, cdc.account(s))[1]["schema.history.internal.kafka.topic"]
    for topic in (register.PRODUCTS_TOPIC, history):
        partitions = topics[topic].partitions.values()
        assert all(len(p.replicas) == 3 for p in partitions), (topic, [p.replicas for p in partitions])
        assert topic_config(s, topic, "min.insync.replicas") == "2", topic
    assert len(topics[register.PRODUCTS_TOPIC].partitions) == register.TOPIC_PARTITIONS
    assert topic_config(s, register.PRODUCTS_TOPIC, "cleanup.policy") == "compact"
    # The history is one ordered log of the DDL, never compacted away (Debezium refuses compact).
    assert len(topics[history].partitions) == 1
    assert (topic_config(s, history, "cleanup.policy"), topic_config(s, history, "retention.ms")) == ("delete", "-1")


@pytest.mark.parametrize("account", [accounts.ORDER, accounts.CATALOG])
def test_only_the_source_writes_catalog_products(cluster, account):
    """A record of catalog.products is what a view of the products believes: only the source
    (the Connect principal) may write it; the Order service and the Catalog are refused."""
    s = cluster.settings
    # A tombstone of a key no product has: harmless to every reader (and compacted away).
    key = f"intruder-{uuid.uuid4().hex[:8]}".encode()
    error = produce_once(accounts.acting_as(s, account).kafka_client(), register.PRODUCTS_TOPIC, None, key)
    assert error is not None and error.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED, error
    # Positive control: the admin's write of the same record lands.
    assert produce_once(s.kafka_client(), register.PRODUCTS_TOPIC, None, key) is None


PRODUCTS, BEFORE_S, AFTER_S, SETTLE_S = 4, 3, 4, 240


def source_task_worker(url: str) -> str | None:
    """The worker URL of the source's task if it is RUNNING, as `url` reports it; None otherwise."""
    try:
        _, status = rest.call(url, "GET", f"/connectors/{SOURCE}/status", timeout=5)
    except OSError:
        return None
    tasks = status.get("tasks", []) if isinstance(status, dict) else []
    return f"http://{tasks[0]['worker_id']}" if len(tasks) == 1 and tasks[0]["state"] == "RUNNING" else None


def test_the_source_s_worker_killed_mid_update(cluster, capsys):
    """kill -9 of the worker that runs the source's task while prices change: the other worker
    takes the task over (after the group's session timeout and a rebalance), resumes from the
    committed offsets, and once settled every committed price is on catalog.products, none
    unknown, none out of order per product (exactly-once: no older price replayed after a newer)."""
    s = cluster.settings
    running_on = wait_until(lambda: source_task_worker(s.connect_url), timeout=60, what="the source's task RUNNING")
    victim = cluster.workers[s.connect_urls.index(running_on)]
    survivor = next(url for url in s.connect_urls if url != running_on)
    products = [add_product(s, "CDC-KILL") for _ in range(PRODUCTS)]
    fault = PartFault(cluster, victim.name)
    with PriceWriter(s, products) as writer:
        time.sleep(BEFORE_S)
        fault.inject()
        killed_at = time.monotonic()
        wait_until(lambda: source_task_worker(survivor) == survivor, timeout=120, interval=0.5,
                   what=f"the source's task RUNNING on {survivor}")
        moved_at = time.monotonic()
        time.sleep(AFTER_S)
    fault.recover()
    assert all(writer.written[p] for p in products), writer.written

    ledger = settle_prices(s, writer, SETTLE_S)
    with capsys.disabled():
        print(f"\nkill -9 {victim.name} (the source's worker) | {ledger.line()} | task moved "
              f"{moved_at - killed_at:.1f}s after kill | in sync {ledger.settled_at - killed_at:.1f}s after kill")
    ledger.assert_every_price_once_in_order()
