"""One name per setting: moving a port with one variable moves everything that uses it."""
from pathlib import Path

from catalog_svc import config as catalog_config
from connect import register
from order_svc import config as order_config
from ordersync.config import Settings
from ordersync.gate import config as gate_config


def test_defaults_fit_the_local_stack():
    s = Settings.from_env({})
    assert (s.kafka_bootstrap, s.connect_url) == ("127.0.0.1:9092", "http://127.0.0.1:8083")
    assert s.mariadb_url(s.orders_db) == "mysql+pymysql://ordersync:ordersync@127.0.0.1:3306/orders_db"
    assert (s.accepted_topic, s.rejected_topic) == ("orders.accepted", "orders.rejected")
    assert (s.sink_dlq_topic, s.catalog_dlq_topic) == ("orders-sink-dlq", "orders.accepted.catalog-stock.dlq")
    assert (s.gate_db, s.gate_group, s.gate_ports) == ("gate_db", "orders-gate", [50071])


def test_one_variable_moves_every_user_of_a_port():
    env = {"KAFKA_PORT": "19092", "CONNECT_PORT": "18083", "MARIADB_PORT": "13306", "CATALOG_PORT": "15061",
           "ORDERS_TOPIC": "shop-orders", "ORDERS_DB": "shop", "ORDERS_TABLE": "placed", "SINK_NAME": "shop-sink"}
    s = Settings.from_env(env)
    assert s.kafka_bootstrap == "127.0.0.1:19092" and s.connect_url == "http://127.0.0.1:18083"
    # The connector JSON follows: its topic, database, table, dead-letter topic and MariaDB port.
    name, connector = register.load(register.DEFAULT_CONFIG, s)
    assert name == "shop-sink"
    assert connector["topics"] == "shop-orders.accepted"  # what the gate accepted of shop-orders
    assert connector["connection.url"] == "jdbc:mariadb://127.0.0.1:13306/shop"
    assert connector["collection.name.format"] == "placed"
    assert connector["errors.deadletterqueue.topic.name"] == "shop-sink-dlq"
    # A service process started with these settings as its environment sees the same values.
    order = order_config.load({**s.to_env(), "ORDER_PORT": "15051"})
    assert order.kafka_client["bootstrap.servers"] == "127.0.0.1:19092" and s.catalog_addresses == ["127.0.0.1:15061"]
    assert order.orders_topic == "shop-orders" and order.orders_table == "placed"
    assert order.orders_db_url.endswith("@127.0.0.1:13306/shop")
    gate = gate_config.load({**s.to_env(), "GATE_PORT": "15071"})
    assert (gate.orders_topic, gate.accepted_topic, gate.rejected_topic, gate.listen) == (
        "shop-orders", "shop-orders.accepted", "shop-orders.rejected", "127.0.0.1:15071")
    assert catalog_config.load(s.to_env()).accepted_topic == "shop-orders.accepted"


def test_to_env_round_trips():
    s = Settings(kafka_port=1, order_ports=(5, 6), stack_dir=Path("/tmp/x"), stack_startup_timeout=3.5)
    assert Settings.from_env(s.to_env()) == s
