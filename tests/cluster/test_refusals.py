"""Only those who belong get in: each refused action is refused, for the reason it should be.

Every refusal has its positive control in the same test: the same client, with the right
credentials or on what it may touch, succeeds. So no refusal can pass with the brokers or the
database down.
"""
import stat
import uuid
from pathlib import Path

import pymysql
import pytest
from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient

from bus.envelope import encode
from catalog_svc import stock
from catalog_svc.retention import AppliedRetention
from connect import rest
from stack import accounts
from tests.poisons import valid_event
from tests.support.kafka import produce_once
from tests.support.tables import add_product, stock_of
from tests.support.waiting import wait_until


def client_of(settings, account: accounts.Account) -> dict:
    return accounts.acting_as(settings, account).kafka_client()


def an_order(settings) -> bytes:
    """A valid order event (a new order of a product of its own): what the Order service may write."""
    return encode(valid_event(f"refusal-{uuid.uuid4().hex[:12]}", "refusal-user", add_product(settings, "REFUSAL")))


def test_an_anonymous_client_is_refused(cluster):
    s = cluster.settings
    anonymous = {"bootstrap.servers": s.kafka_bootstrap}  # no SASL: the listeners speak nothing else
    with pytest.raises(KafkaException):
        AdminClient({**anonymous, "log_level": 0}).list_topics(timeout=5)
    assert produce_once(anonymous, s.orders_topic) is not None, "an anonymous producer wrote to orders"
    # Positive control: the same brokers, with credentials.
    assert s.orders_topic in AdminClient({**s.kafka_client(), "log_level": 0}).list_topics(timeout=10).topics


def test_a_wrong_password_is_refused(cluster):
    s = cluster.settings
    right = client_of(s, accounts.ORDER)
    error = produce_once({**right, "sasl.password": "not-the-password"}, s.orders_topic, an_order(s))
    assert error is not None and error.code() in (KafkaError._AUTHENTICATION, KafkaError._MSG_TIMED_OUT), error
    assert produce_once(right, s.orders_topic, an_order(s)) is None, "the right password must get in"


def test_a_client_that_does_not_trust_the_stack_ca_is_refused(cluster):
    s = cluster.settings
    trusting = client_of(s, accounts.ORDER)
    untrusting = {k: v for k, v in trusting.items() if k != "ssl.ca.location"}
    with pytest.raises(KafkaException):  # the brokers' certificate is signed by no CA it knows
        AdminClient({**untrusting, "log_level": 0}).list_topics(timeout=5)
    assert produce_once(trusting, s.orders_topic, an_order(s)) is None, "trusting the CA must get in"


@pytest.mark.parametrize("account", [accounts.ORDER, accounts.CATALOG, accounts.SINK])
def test_only_the_gate_writes_what_the_sink_and_the_catalog_read(cluster, account):
    """orders.accepted is what the table and the stock get: a record there skips the gate."""
    s = cluster.settings
    product = add_product(s, "GATE-ONLY")
    before = stock_of(s, product)
    sneaked = valid_event(f"sneak-{uuid.uuid4().hex[:12]}", "sneak-user", product)
    error = produce_once(client_of(s, account), s.accepted_topic, encode(sneaked), sneaked.order_id.encode())
    assert error is not None and error.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED, error
    # Positive control: the gate's principal may, and what it writes is applied.
    written = valid_event(f"gate-{uuid.uuid4().hex[:12]}", "gate-user", product)
    assert produce_once(client_of(s, accounts.GATE), s.accepted_topic, encode(written),
                        written.order_id.encode()) is None
    wait_until(lambda: stock_of(s, product) == before - 1, timeout=60, what="the gate's record in the stock")


def test_the_catalog_cannot_write_orders_the_order_service_can(cluster):
    s = cluster.settings
    error = produce_once(client_of(s, accounts.CATALOG), s.orders_topic, an_order(s))
    assert error is not None and error.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED, error
    assert produce_once(client_of(s, accounts.ORDER), s.orders_topic, an_order(s)) is None


@pytest.mark.parametrize("topic", ["catalog_dlq_topic", "rejected_topic", "sink_dlq_topic"])
def test_the_order_service_writes_orders_and_nothing_else(cluster, topic):
    s = cluster.settings
    order = client_of(s, accounts.ORDER)
    error = produce_once(order, getattr(s, topic))
    assert error is not None and error.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED, error
    assert produce_once(order, s.orders_topic, an_order(s)) is None, "the same client writes orders"


def mariadb_as(settings, account: accounts.Account, database: str):
    who = accounts.acting_as(settings, account)
    return pymysql.connect(host=who.mariadb_host, port=who.mariadb_port, user=who.mariadb_user,
                           password=who.db_password, database=database, connect_timeout=5)


def run_as(settings, account, database: str, statement: str) -> int | None:
    """Run one statement as the account; the MariaDB error code, or None when it was allowed."""
    try:
        conn = mariadb_as(settings, account, database)
    except pymysql.MySQLError as e:  # not even allowed into the database
        return e.args[0]
    try:
        with conn.cursor() as cur:
            cur.execute(statement)
        conn.rollback()  # the allowed writes of the positive controls change nothing
        return None
    except pymysql.MySQLError as e:
        return e.args[0]
    finally:
        conn.close()


# account, what it is refused, what it may do instead (its positive control)
DATABASE_CASES = {
    "order-inserts-orders": (accounts.ORDER, ("orders_db", "INSERT INTO orders (order_id) VALUES ('x')"),
                             ("orders_db", "SELECT COUNT(*) FROM orders")),
    "order-deletes-orders": (accounts.ORDER, ("orders_db", "DELETE FROM orders"),
                             ("orders_db", "SELECT COUNT(*) FROM orders")),
    "sink-deletes-orders": (accounts.SINK, ("orders_db", "DELETE FROM orders"),
                            ("orders_db", "UPDATE orders SET qty = qty WHERE order_id = 'none'")),
    "sink-updates-stock": (accounts.SINK, ("catalog_db", "UPDATE products SET stock = 0"),
                           ("orders_db", "SELECT COUNT(*) FROM orders")),
    "catalog-reads-orders": (accounts.CATALOG, ("orders_db", "SELECT * FROM orders"),
                             ("catalog_db", "UPDATE products SET stock = stock WHERE product_id = 'none'")),
    "gate-updates-stock": (accounts.GATE, ("catalog_db", "UPDATE products SET stock = 0"),
                           ("catalog_db", "SELECT product_id FROM products LIMIT 1")),
    "gate-reads-orders": (accounts.GATE, ("orders_db", "SELECT * FROM orders"),
                          ("gate_db", "SELECT COUNT(*) FROM first_events")),
}


@pytest.mark.parametrize("case", list(DATABASE_CASES))
def test_each_database_account_is_refused_what_it_does_not_need(cluster, case):
    account, (database, refused), (allowed_db, allowed) = DATABASE_CASES[case]
    # 1142: command denied; 1044: access denied to the database.
    assert run_as(cluster.settings, account, database, refused) in (1142, 1044), refused
    assert run_as(cluster.settings, account, allowed_db, allowed) is None, f"positive control: {allowed}"


def test_secrets_stay_in_their_file(cluster):
    s = cluster.settings
    secrets = Path(s.secrets_file)
    assert stat.S_IMODE(secrets.stat().st_mode) == 0o600
    _, config = rest.call(s.connect_url, "GET", f"/connectors/{s.sink_name}")
    password = s.secret(f"mariadb.{accounts.SINK.mariadb_user}")
    assert config["config"]["connection.password"].startswith("${file:"), config
    assert password not in str(config)
    for conf in (s.stack_dir / "conf").rglob("connect-*.properties"):
        assert s.secret(f"kafka.{accounts.SINK.kafka_user}") not in conf.read_text(), conf


def test_the_catalog_principal_trims_applied_orders_and_the_order_principal_may_not_ask(cluster):
    """The retention of applied_orders (catalog_svc/retention.py) as the Catalog runs it on the
    secured cluster: its principal reads the accepted topic's log starts and its account deletes
    what lies below them; the Order's principal may not describe that topic."""
    s = cluster.settings
    catalog = accounts.acting_as(s, accounts.CATALOG)
    engine = stock.create_engine(catalog.mariadb_url(s.catalog_db))
    refused = AppliedRetention(engine, s.accepted_topic, client_of(s, accounts.ORDER), every_s=60)
    retention = AppliedRetention(engine, s.accepted_topic, catalog.kafka_client(), every_s=60)
    try:
        with pytest.raises(KafkaException, match="TOPIC_AUTHORIZATION_FAILED"):
            refused.log_starts()
        # The positive control: the Catalog's principal gets every partition's first offset and trims.
        partitions = AdminClient({**s.kafka_client(), "log_level": 0}).list_topics(
            s.accepted_topic, timeout=10).topics[s.accepted_topic].partitions
        starts = retention.log_starts()
        assert sorted(starts) == sorted(partitions) and all(start >= 0 for start in starts.values()), starts
        assert retention.trim_once() >= 0
    finally:
        refused.close()
        retention.close()
        engine.dispose()
