"""The products source's configuration as the stack registers it, single-node and secured (no
server): the schema history's own clients log in only on a secured stack, with the password a
reference the worker resolves; the Connect principal's grants follow the connector's names."""
from connect import register
from ordersync.config import Settings
from stack import accounts, acl, cdc
from stack.acl import DESCRIBE, GROUP, PREFIXED, TOPIC, TRANSACTIONAL_ID, WRITE

CLIENTS = ("schema.history.internal.producer.", "schema.history.internal.consumer.")


def secured(tmp_path) -> Settings:
    s = Settings(stack_dir=tmp_path, kafka_security_protocol="SASL_SSL", kafka_user=accounts.KAFKA_ADMIN,
                 secrets_file=str(accounts.secrets_path(tmp_path)), kafka_ssl_ca=str(tmp_path / "ca.pem"))
    accounts.ensure_secrets(s)
    return s


def test_single_node_history_clients_keep_the_workers_defaults(tmp_path):
    _, config = register.load(register.PRODUCTS_SOURCE, cdc.account(Settings(stack_dir=tmp_path)))
    assert not [key for key in config if key.startswith(CLIENTS)]


def test_secured_history_clients_log_in_as_connect_with_a_reference(tmp_path):
    s = secured(tmp_path)
    _, config = register.load(register.PRODUCTS_SOURCE, cdc.account(s))
    for prefix in CLIENTS:
        assert config[prefix + "security.protocol"] == "SASL_SSL"
        assert config[prefix + "ssl.truststore.location"] == s.kafka_ssl_ca
        jaas = config[prefix + "sasl.jaas.config"]
        assert f'username="{accounts.SINK.kafka_user}"' in jaas
        assert f'password="${{file:{s.secrets_file}:kafka.{accounts.SINK.kafka_user}}}"' in jaas
    assert s.secret(f"kafka.{accounts.SINK.kafka_user}") not in str(config), "a password in the config"
    assert config["database.user"] == accounts.CDC.mariadb_user
    assert config["database.password"] == s.secret_reference(f"mariadb.{accounts.CDC.mariadb_user}")
    assert not [key for key in config if key.startswith("_")], "a comment sent to the worker"


def test_connect_may_write_the_products_topic_and_the_order_service_read_it(tmp_path):
    s = secured(tmp_path)
    granted = acl.grants(s)[accounts.SINK.kafka_user]
    assert (TOPIC, register.PRODUCTS_TOPIC, acl.LITERAL, WRITE) in granted
    assert (TRANSACTIONAL_ID, "ordersync-connect-products-source-", PREFIXED, WRITE) in granted
    assert (GROUP, "catalog-schemahistory", acl.LITERAL, acl.READ) in granted
    assert not [g for g in granted if g[3] == acl.AclOperation.CREATE], "the stack creates its topics"
    for user in (accounts.CATALOG.kafka_user, accounts.GATE.kafka_user):
        assert not [g for g in acl.grants(s)[user] if g[1].startswith(register.PRODUCTS_TOPIC)]
    # The Order service's views read it (assign(): no group) and may do nothing else with it.
    assert sorted(g[3].name for g in acl.grants(s)[accounts.ORDER.kafka_user]
                  if g[1].startswith(register.PRODUCTS_TOPIC)) == ["DESCRIBE", "READ"]
    assert (TOPIC, register.PRODUCTS_TOPIC, acl.LITERAL, DESCRIBE) in granted
