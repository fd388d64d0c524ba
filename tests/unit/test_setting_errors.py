"""A bad setting is refused when it is read, by one error that names the variable, its value and the
form expected; every entry point then exits with code 2 and that one line on stderr, no traceback."""
import dataclasses
import subprocess
import sys

import pytest

from catalog_svc import config as catalog_config
from order_svc import config as order_config
from ordersync.config import PATH, ROOT, TEXT, SettingError, Settings, exits_on_bad_setting
from ordersync.gate import config as gate_config


def refused(load, env: dict) -> str:
    with pytest.raises(SettingError) as caught:
        load(env)
    return str(caught.value)


# What the new user of issue 16 met, each now one message.
@pytest.mark.parametrize("variable, value, message", [
    ("ORDER_PORTS", "abc", "ORDER_PORTS='abc': expected one or more distinct port numbers 1-65535, comma-separated"),
    ("KAFKA_PORT", "notanumber", "KAFKA_PORT='notanumber': expected a port number 1-65535"),
    ("METRICS_PORT_OFFSET", "x", "METRICS_PORT_OFFSET='x': expected 0 (no exporter) or a number 1-65534 added to "
                                 "each gRPC port"),
    ("CATALOG_PORT", "99999", "CATALOG_PORT='99999': expected a port number 1-65535"),
    ("ORDER_PORTS", "50051,50051", "ORDER_PORTS='50051,50051': expected one or more distinct port numbers 1-65535, "
                                   "comma-separated"),
    ("KAFKA_BROKERS", "0", "KAFKA_BROKERS='0': expected a whole number, at least 1"),
])
def test_the_rough_edges_of_issue_16(variable, value, message):
    assert refused(Settings.from_env, {variable: value}) == message


# One bad value for every setting that has a form; the message names it and the value.
BAD = {
    "STACK_DIR": None, "MARIADB_HOST": None, "MARIADB_USER": None, "MARIADB_PASSWORD": None,
    "MARIADB_PORT": "0", "KAFKA_PORT": "65536", "KAFKA_CONTROLLER_PORT": "-1",
    "KAFKA_BOOTSTRAP": "127.0.0.1:90000", "CONNECT_PORT": "80a", "CONNECT_URL": "127.0.0.1:8083",
    "ORDERS_TOPIC": "my orders", "ORDERS_DB": "orders-db", "ORDERS_TABLE": "orders;drop", "CATALOG_DB": "x" * 65,
    "GATE_DB": "gate.db", "CATALOG_GROUP": "stock/group", "GATE_GROUP": None, "SINK_NAME": "sink name",
    "SINK_TASKS": "0", "CATALOG_PORT": "1.5", "CATALOG_INSTANCES": "-1", "ORDER_PORTS": ",",
    "GATE_PORT": "70000", "GATE_INSTANCES": "two", "METRICS_PORT_OFFSET": "-5", "JAVA_HOME": None,
    "KAFKA_HEAP_OPTS": None, "CONNECT_HEAP_OPTS": None, "STACK_STARTUP_TIMEOUT": "0",
    "KAFKA_BROKERS": "0", "CONNECT_WORKERS": "none", "KAFKA_SECURITY_PROTOCOL": "TLS",
    "KAFKA_SASL_MECHANISM": "SCRAM", "KAFKA_USER": None, "KAFKA_SSL_CA": None, "SECRETS_FILE": None,
    "AUTH_PUBLIC_KEY": " /keys/public.pem", "AUTH_PRIVATE_KEY": "key.pem\n",
    "GRPC_TLS_CA": "ca.pem\n", "GRPC_TLS_CERT": " server.pem", "GRPC_TLS_KEY": "key.pem ",
    "KAFKA_HOSTS": "a,,b", "CONNECT_HOSTS": "-worker", "GATE_HOSTS": "gate one", "CATALOG_HOSTS": "catalog_1",
    "ORDER_HOSTS": "a.", "TRACING": "yes", "TRACE_SAMPLE_RATIO": "1.5", "ZIPKIN_HOST": "zip kin",
    "ZIPKIN_PORT": "0", "PROMETHEUS_HOST": "-prom", "PROMETHEUS_PORT": "9o90",
}


def test_every_setting_has_a_form_and_a_bad_value_here():
    fields = {f.name.upper(): f.metadata["kind"] for f in dataclasses.fields(Settings)}
    assert set(BAD) == set(fields)  # a new setting is added here too
    assert {name for name, value in BAD.items() if value is None} == {
        name for name, kind in fields.items() if kind in (TEXT, PATH)}  # any text is one


@pytest.mark.parametrize("variable", [name for name, value in BAD.items() if value is not None])
def test_a_bad_value_names_its_variable(variable):
    message = refused(Settings.from_env, {variable: BAD[variable]})
    assert message.startswith(f"{variable}={BAD[variable]!r}: expected "), message


@pytest.mark.parametrize("variable", ["KAFKA_BROKERS", "CONNECT_WORKERS", "CATALOG_INSTANCES", "GATE_INSTANCES",
                                      "SINK_TASKS"])
@pytest.mark.parametrize("value", ["0", "-2", "1.0", "many"])
def test_counts_are_at_least_one(variable, value):
    assert refused(Settings.from_env, {variable: value}) == f"{variable}={value!r}: expected a whole number, at least 1"
    two = Settings.from_env({variable: "2", "KAFKA_CONTROLLER_PORT": "19192"})  # 2 brokers: 9092 and 9093
    assert getattr(two, variable.lower()) == 2


@pytest.mark.parametrize("value", ["0", "-1", "nan", "inf", "soon"])
def test_seconds_are_above_zero_and_finite(value):
    assert refused(Settings.from_env, {"STACK_STARTUP_TIMEOUT": value}) == (
        f"STACK_STARTUP_TIMEOUT={value!r}: expected a number of seconds greater than 0")
    assert Settings.from_env({"STACK_STARTUP_TIMEOUT": "0.5"}).stack_startup_timeout == 0.5


def test_the_security_protocol_is_a_known_one_in_any_case():
    assert refused(Settings.from_env, {"KAFKA_SECURITY_PROTOCOL": "SASL-SSL"}) == (
        "KAFKA_SECURITY_PROTOCOL='SASL-SSL': expected one of PLAINTEXT, SSL, SASL_PLAINTEXT, SASL_SSL")
    assert Settings.from_env({"KAFKA_SECURITY_PROTOCOL": "plaintext"}).secured is False
    ssl = Settings.from_env({"KAFKA_SECURITY_PROTOCOL": "ssl", "KAFKA_SSL_CA": "/ca.pem"})
    assert ssl.kafka_security() == {"security.protocol": "SSL", "ssl.ca.location": "/ca.pem"}  # no SASL asked


def test_sasl_needs_a_user_and_a_secrets_file():
    assert refused(Settings.from_env, {"KAFKA_SECURITY_PROTOCOL": "SASL_SSL", "SECRETS_FILE": "/s"}) == (
        "KAFKA_USER='': expected the Kafka principal of this process: KAFKA_SECURITY_PROTOCOL=SASL_SSL logs in with it")
    assert refused(Settings.from_env, {"KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT", "KAFKA_USER": "order"}).startswith(
        "SECRETS_FILE='': expected the file that holds its password")


def test_a_missing_secrets_file_or_password_is_a_bad_setting(tmp_path):
    s = Settings(kafka_security_protocol="SASL_SSL", kafka_user="order", secrets_file=str(tmp_path / "none"))
    with pytest.raises(SettingError, match=r"^SECRETS_FILE='.*none': expected a readable file of passwords"):
        s.kafka_security()
    (tmp_path / "none").write_text("kafka.admin=x\n")
    with pytest.raises(SettingError, match="expected a file with the password kafka.order="):
        s.kafka_security()


def test_no_two_parts_share_a_port():
    assert refused(Settings.from_env, {"CATALOG_PORT": "50052"}) == (
        "ORDER_PORTS='50051,50052': expected no port that another part of the stack uses: CATALOG_PORT has 50052")
    # Three brokers take 9092-9094: the default controller port 9093 is one of them.
    assert refused(Settings.from_env, {"KAFKA_BROKERS": "3"}) == (
        "KAFKA_CONTROLLER_PORT='9093': expected no port that another part of the stack uses: "
        "KAFKA_PORT with KAFKA_BROKERS=3 has 9093")
    assert refused(Settings.from_env, {"GATE_PORT": "3306"}).startswith("GATE_PORT='3306'")
    assert Settings.from_env({"KAFKA_BROKERS": "3", "KAFKA_CONTROLLER_PORT": "19192"}).kafka_ports == [9092, 9093, 9094]


def test_a_run_of_ports_fits_below_65536():
    assert refused(Settings.from_env, {"CONNECT_PORT": "65535", "CONNECT_WORKERS": "2"}) == (
        "CONNECT_PORT='65535': expected a port number 1-65534, so that CONNECT_WORKERS=2 fit on it and the next ports")


def test_settings_built_in_code_are_checked_too():
    with pytest.raises(SettingError, match=r"^KAFKA_PORT='0': expected a port number 1-65535$"):
        Settings(kafka_port=0)
    with pytest.raises(SettingError, match="^ORDER_PORTS='50051,50051'"):
        dataclasses.replace(Settings(), order_ports=(50051, 50051))
    assert Settings(order_ports=()).order_ports == ()  # no Order instance (Topology.private(orders=0))


def test_good_values_still_read():
    s = Settings.from_env({"ORDER_PORTS": " 15051 , 15052 ", "KAFKA_BOOTSTRAP": "k1:9093,[::1]:9093,SSL://k3",
                           "CONNECT_URL": "https://connect.example:8083", "METRICS_PORT_OFFSET": "0"})
    assert s.order_ports == (15051, 15052) and s.kafka_bootstrap == "k1:9093,[::1]:9093,SSL://k3"
    assert s.metrics_port(15051, {}) == 0


# A process's own settings, read by the service configs.
@pytest.mark.parametrize("load, env, message", [
    (order_config.load, {"ORDER_PORT": "abc"}, "ORDER_PORT='abc': expected a port number 1-65535"),
    (order_config.load, {"PRODUCT_VIEW_MAX_BEHIND_S": "0"},
     "PRODUCT_VIEW_MAX_BEHIND_S='0': expected a number of seconds greater than 0"),
    (order_config.load, {"PUBLISH_TIMEOUT_S": "ten"}, "PUBLISH_TIMEOUT_S='ten': expected a number of seconds greater than 0"),
    (order_config.load, {"PRODUCT_VIEW_MAX_BEHIND_S": "2"}, "PRODUCT_VIEW_MAX_BEHIND_S='2': expected at least 3 "
                                                           "(the view measures how current it is about every second)"),
    (order_config.load, {"METRICS_PORT": "70000"}, "METRICS_PORT='70000': expected a port number 1-65535, or 0 for none"),
    (gate_config.load, {"GATE_PORT": "0"}, "GATE_PORT='0': expected a port number 1-65535"),
    (catalog_config.load, {"METRICS_PORT": "x"}, "METRICS_PORT='x': expected a port number 1-65535, or 0 for none"),
    (catalog_config.load, {"CATALOG_PORT": "65000", "METRICS_PORT_OFFSET": "1000"},
     "METRICS_PORT_OFFSET='1000': expected 0 (no exporter) or at most 535: the service on 65000 has its metrics "
     "on its port + this"),
])
def test_a_process_s_own_settings_are_checked_when_read(load, env, message):
    assert refused(load, env) == message


def test_a_process_s_own_settings_keep_their_defaults():
    order = order_config.load({"ORDER_PORT": ""})
    assert (order.listen, order.product_view_max_behind_s, order.publish_timeout_s) == ("127.0.0.1:50051", 30.0, 10.0)
    assert order.metrics_port == 51051
    assert order_config.load({"METRICS_PORT": "0"}).metrics_port == 0


def test_an_entry_point_exits_2_with_one_line(capsys):
    @exits_on_bad_setting
    def main() -> int:
        Settings.from_env({"KAFKA_PORT": "notanumber"})
        return 0

    with pytest.raises(SystemExit) as exit_:
        main()
    assert exit_.value.code == 2
    assert capsys.readouterr().err == "bad setting: KAFKA_PORT='notanumber': expected a port number 1-65535\n"


# Every entry point that reads settings, run as a user runs it.
ENTRY_POINTS = [
    (["-m", "order_svc"], {"ORDER_PORT": "abc"}, "ORDER_PORT='abc'"),
    (["-m", "order_svc"], {"PUBLISH_TIMEOUT_S": "-1"}, "PUBLISH_TIMEOUT_S='-1'"),
    (["-m", "catalog_svc"], {"CATALOG_PORT": "99999"}, "CATALOG_PORT='99999'"),
    (["-m", "ordersync.gate"], {"GATE_PORT": "x"}, "GATE_PORT='x'"),
    (["-m", "stack", "status"], {"KAFKA_BROKERS": "0"}, "KAFKA_BROKERS='0'"),
    (["-m", "stack", "up"], {"ORDER_PORTS": "50051,50051"}, "ORDER_PORTS='50051,50051'"),
    (["-m", "demo.run"], {"KAFKA_PORT": "notanumber"}, "KAFKA_PORT='notanumber'"),
    (["-m", "connect.register", "--wait"], {"CONNECT_PORT": "0"}, "CONNECT_PORT='0'"),
    (["-m", "connect.watchdog"], {"KAFKA_SECURITY_PROTOCOL": "TLS"}, "KAFKA_SECURITY_PROTOCOL='TLS'"),
]


@pytest.mark.parametrize("args, env, named", ENTRY_POINTS, ids=[" ".join(e[0][1:]) + " " + next(iter(e[1]))
                                                              for e in ENTRY_POINTS])
def test_every_entry_point_exits_2_with_one_line_on_stderr(args, env, named):
    result = subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True, timeout=60,
                            env={"PATH": "/usr/bin:/bin", "PYTHONPATH": f"{ROOT}:{ROOT / 'gen'}",
                                 "STACK_DIR": "/nonexistent/stack", **env})
    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stderr.count("\n") == 1 and result.stderr.startswith(f"bad setting: {named}: expected "), result.stderr
    assert "Traceback" not in result.stdout and result.stdout == "", result.stdout
