"""Cluster mode's settings: more nodes on the next ports, one account per part, passwords only in
the secrets file (never in an environment variable, a config dump or the connector's config)."""
import stat

import pytest

from catalog_svc import config as catalog_config
from connect import register
from order_svc import config as order_config
from ordersync.config import Settings
from stack import accounts


@pytest.fixture
def cluster(tmp_path) -> Settings:
    s = Settings(stack_dir=tmp_path, kafka_port=19092, kafka_brokers=3, connect_port=18083, connect_workers=2,
                 catalog_port=50161, catalog_instances=2, kafka_security_protocol="SASL_SSL",
                 kafka_user=accounts.KAFKA_ADMIN, kafka_ssl_ca=str(tmp_path / "ca.pem"),
                 secrets_file=str(accounts.secrets_path(tmp_path)))
    accounts.ensure_secrets(s)
    return s


def test_nodes_sit_on_the_next_ports(cluster):
    assert cluster.kafka_bootstrap == "127.0.0.1:19092,127.0.0.1:19093,127.0.0.1:19094"
    assert cluster.connect_urls == ["http://127.0.0.1:18083", "http://127.0.0.1:18084"]
    assert cluster.catalog_addresses == ["127.0.0.1:50161", "127.0.0.1:50162"]


def test_the_secrets_file_is_private_and_made_once(cluster):
    path = accounts.secrets_path(cluster.stack_dir)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    before = path.read_text()
    accounts.ensure_secrets(cluster)
    assert path.read_text() == before
    assert len({cluster.secret(f"kafka.{user}") for user in ("admin", "order", "catalog", "connect")}) == 4


def test_each_service_logs_in_as_its_own_account(cluster):
    order = order_config.load({**accounts.env_for(cluster, accounts.ORDER), "ORDER_PORT": "50151"})
    assert order.kafka_client["bootstrap.servers"] == cluster.kafka_bootstrap
    assert order.kafka_client["sasl.username"] == "order"
    assert order.kafka_client["sasl.password"] == cluster.secret("kafka.order")
    assert order.kafka_client["ssl.ca.location"] == cluster.kafka_ssl_ca
    assert order.orders_db_url.startswith(f"mysql+pymysql://order_svc:{cluster.secret('mariadb.order_svc')}@")
    catalog = catalog_config.load({**accounts.env_for(cluster, accounts.CATALOG), "CATALOG_INSTANCE": "catalog-2"})
    # One configuration for all its clients (the consumer and its dead-letter producer), one account.
    assert catalog.kafka_client["sasl.username"] == "catalog"
    assert catalog.consumer_config["partition.assignment.strategy"] == "cooperative-sticky"
    assert catalog.consumer_config["client.id"] == "catalog-2"


def test_no_password_travels_in_the_environment(cluster):
    env = " ".join(f"{k}={v}" for role in (None, accounts.ORDER, accounts.CATALOG, accounts.SINK)
                   for k, v in accounts.env_for(cluster, role).items())
    for line in accounts.secrets_path(cluster.stack_dir).read_text().splitlines()[1:]:
        assert line.partition("=")[2] not in env


def test_the_connector_names_its_password_by_reference(cluster):
    import dataclasses
    sink = dataclasses.replace(cluster, mariadb_user=accounts.SINK.mariadb_user)
    _, config = register.load(register.DEFAULT_CONFIG, sink)
    assert config["connection.username"] == "orders_sink"
    assert config["connection.password"] == f"${{file:{cluster.secrets_file}:mariadb.orders_sink}}"


def test_without_sasl_everything_is_as_before():
    s = Settings()
    assert s.kafka_security() == {} and accounts.acting_as(s, accounts.ORDER) == s
    assert catalog_config.load({}).consumer_config == {"isolation.level": "read_committed"}


def test_the_makefile_s_cluster_settings_pass_their_checks():
    """`make cluster-up`'s variables are read like any others (ordersync.config checks them): its
    controllers sit on ports of their own, not on the brokers' next ports."""
    import re
    import shlex

    from ordersync.config import ROOT
    makefile = (ROOT / "Makefile").read_text().replace("\\\n", " ")
    line = re.search(r"^CLUSTER_ENV := (.*)$", makefile, re.MULTILINE)
    assert line, "no CLUSTER_ENV in the Makefile"
    # Its references to the Makefile's own variables (CLUSTER_PORTS) as make expands them.
    defined = dict(re.findall(r"^(\w+)\s*:=[ \t]*(.*)$", makefile, re.MULTILINE))
    text = re.sub(r"\$\((\w+)\)", lambda ref: "/tmp/cluster" if ref[1] == "CLUSTER_DIR" else defined[ref[1]], line[1])
    env = dict(word.split("=", 1) for word in shlex.split(text))
    s = Settings.from_env(env)
    assert (s.kafka_brokers, s.connect_workers, s.catalog_instances, s.gate_instances) == (3, 2, 2, 2)
    assert s.secured and s.kafka_user == "admin" and s.kafka_ports == [19092, 19093, 19094]
