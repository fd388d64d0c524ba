"""Only those who belong get in: each refused action is refused, for the reason it should be."""
import stat
from pathlib import Path

import pymysql
import pytest
from confluent_kafka import KafkaError, KafkaException, Producer
from confluent_kafka.admin import AdminClient

from connect import rest
from stack import accounts


def produce_once(config: dict, topic: str) -> KafkaError | None:
    """Produce one record and wait for its outcome: the error, or None when it was written."""
    outcome = []
    producer = Producer({**config, "message.timeout.ms": 8000, "log_level": 0})
    producer.produce(topic, value=b"{}", key=b"intruder", on_delivery=lambda err, msg: outcome.append(err))
    producer.flush(15)
    return outcome[0] if outcome else KafkaError(KafkaError._MSG_TIMED_OUT)


def test_an_anonymous_client_is_refused(cluster):
    s = cluster.settings
    anonymous = {"bootstrap.servers": s.kafka_bootstrap}  # no SASL: the listeners speak nothing else
    with pytest.raises(KafkaException):
        AdminClient({**anonymous, "log_level": 0}).list_topics(timeout=5)
    error = produce_once(anonymous, s.orders_topic)
    assert error is not None, "an anonymous producer wrote to orders"


def test_a_wrong_password_is_refused(cluster):
    s = cluster.settings
    config = {**accounts.acting_as(s, accounts.ORDER).kafka_client(), "sasl.password": "not-the-password"}
    error = produce_once(config, s.orders_topic)
    assert error is not None and error.code() in (KafkaError._AUTHENTICATION, KafkaError._MSG_TIMED_OUT), error


def test_the_catalog_cannot_write_orders(cluster):
    s = cluster.settings
    error = produce_once(accounts.acting_as(s, accounts.CATALOG).kafka_client(), s.orders_topic)
    assert error is not None and error.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED, error


def test_the_order_service_writes_orders_and_nothing_else(cluster):
    s = cluster.settings
    order = accounts.acting_as(s, accounts.ORDER).kafka_client()
    error = produce_once(order, s.catalog_dlq_topic)
    assert error is not None and error.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED, error


def mariadb_as(settings, account: accounts.Account, database: str):
    who = accounts.acting_as(settings, account)
    return pymysql.connect(host=who.mariadb_host, port=who.mariadb_port, user=who.mariadb_user,
                           password=who.db_password, database=database, connect_timeout=5)


@pytest.mark.parametrize("account, database, statement", [
    (accounts.ORDER, "orders_db", "INSERT INTO orders (order_id) VALUES ('x')"),
    (accounts.ORDER, "orders_db", "DELETE FROM orders"),
    (accounts.SINK, "orders_db", "DELETE FROM orders"),
    (accounts.SINK, "catalog_db", "UPDATE products SET stock = 0"),
    (accounts.CATALOG, "orders_db", "SELECT * FROM orders"),
], ids=["order-inserts-orders", "order-deletes-orders", "sink-deletes-orders", "sink-updates-stock",
        "catalog-reads-orders"])
def test_each_database_account_is_refused_what_it_does_not_need(cluster, account, database, statement):
    try:
        conn = mariadb_as(cluster.settings, account, cluster.settings.orders_db)
    except pymysql.MySQLError as e:  # not even allowed into orders_db
        assert e.args[0] == 1044, e
        return
    with conn, pytest.raises(pymysql.MySQLError) as refused:
        with conn.cursor() as cur:
            cur.execute(f"USE {database}")
            cur.execute(statement)
    # 1142: command denied; 1044: access denied to the database.
    assert refused.value.args[0] in (1142, 1044), refused.value


def test_the_order_account_reads_the_orders_table(cluster):
    with mariadb_as(cluster.settings, accounts.ORDER, cluster.settings.orders_db) as conn, conn.cursor() as cur:
        cur.execute("SELECT COUNT(*) FROM orders")


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


def test_a_client_that_does_not_trust_the_stack_ca_is_refused(cluster):
    s = cluster.settings
    config = {k: v for k, v in accounts.acting_as(s, accounts.ORDER).kafka_client().items() if k != "ssl.ca.location"}
    with pytest.raises(KafkaException):  # the brokers' certificate is signed by no CA it knows
        AdminClient({**config, "log_level": 0}).list_topics(timeout=5)
