"""Every part on an address of its own: the *_HOSTS settings, what the clients derive from them,
and the private cluster whose parts each have a loopback address (stack.topology.loopback_hosts)."""

import shutil

import pytest

from ordersync.config import SettingError, Settings, listen_host
from stack import tls
from stack.topology import Topology, loopback_hosts

THREE = {"KAFKA_BROKERS": "3", "KAFKA_CONTROLLER_PORT": "19192", "CONNECT_WORKERS": "2", "CATALOG_INSTANCES": "2"}


def test_one_host_per_instance_is_where_the_clients_look():
    s = Settings.from_env({**THREE, "KAFKA_HOSTS": "10.0.0.1,10.0.0.2,10.0.0.3", "CONNECT_HOSTS": "c1.example,c2.example",
                           "CATALOG_HOSTS": "10.0.1.1,10.0.1.2", "ORDER_HOSTS": "10.0.2.1,10.0.2.2"})
    assert s.kafka_bootstrap == "10.0.0.1:9092,10.0.0.2:9093,10.0.0.3:9094"
    assert s.connect_urls == ["http://c1.example:8083", "http://c2.example:8084"] and s.connect_url == s.connect_urls[0]
    assert s.catalog_addresses == ["10.0.1.1:50061", "10.0.1.2:50062"]
    assert s.order_addresses == ["10.0.2.1:50051", "10.0.2.2:50052"]


def test_one_host_is_every_instance_s():
    s = Settings.from_env({**THREE, "KAFKA_HOSTS": "kafka.example", "CATALOG_HOSTS": "10.0.1.1"})
    assert s.kafka_bootstrap == "kafka.example:9092,kafka.example:9093,kafka.example:9094"
    assert s.catalog_addresses == ["10.0.1.1:50061", "10.0.1.1:50062"]


def test_the_default_is_loopback_as_before():
    s = Settings()
    assert s.kafka_bootstrap == "127.0.0.1:9092" and s.connect_url == "http://127.0.0.1:8083"
    assert s.catalog_addresses == ["127.0.0.1:50061"] and listen_host({}) == "127.0.0.1"


@pytest.mark.parametrize("variable, value", [("KAFKA_HOSTS", "a,b"), ("CATALOG_HOSTS", "a,b,c")])
def test_a_list_of_the_wrong_length_names_its_variable(variable, value):
    with pytest.raises(SettingError) as err:
        Settings.from_env({**THREE, variable: value})
    assert err.value.variable == variable and "one host, or" in str(err.value)


def test_listen_host_is_read_and_checked():
    assert listen_host({"LISTEN_HOST": "0.0.0.0"}) == "0.0.0.0"
    with pytest.raises(SettingError) as err:
        listen_host({"LISTEN_HOST": "not a host"})
    assert err.value.variable == "LISTEN_HOST"


def test_the_private_cluster_puts_every_part_on_an_address_of_its_own():
    topology = Topology.private(orders=2, catalogs=2, reap=False, own_hosts=True, kafka_brokers=3,  # starts nothing
                                connect_workers=2, gate_instances=2)
    try:
        parts = [*topology.infra, *topology.services]
        listening = [p for p in parts if p.port]
        hosts = [p.host for p in listening]
        assert "127.0.0.1" not in hosts and len(set(hosts)) == len(listening), hosts
        for part in topology.services:  # each service listens where the others look for it
            assert part.env["LISTEN_HOST"] == part.host
        s = topology.settings
        assert s.catalog_addresses == [p.address for p in topology.catalogs]
        assert s.kafka_bootstrap == ",".join(p.address for p in topology.brokers)
        assert s.connect_urls == [f"http://{p.address}" for p in topology.workers]
    finally:
        shutil.rmtree(topology.settings.stack_dir)


def test_loopback_hosts_are_in_127_0_0_0_8_and_distinct():
    hosts = loopback_hosts(3, 2, 2, 2, 2)
    one_each = ("mariadb_host", "zipkin_host", "prometheus_host")
    flat = [*(hosts[key] for key in one_each), *(h for key, value in hosts.items() if key not in one_each for h in value)]
    assert len(set(flat)) == len(flat) == 14 and all(h.startswith("127.") for h in flat)


def test_the_certificates_name_every_host():
    s = Settings.from_env({**THREE, "KAFKA_HOSTS": "10.0.0.1,10.0.0.2,10.0.0.3", "CONNECT_HOSTS": "connect.example"})
    extensions = tls.server_extensions(s.all_hosts)
    assert extensions.startswith("subjectAltName=IP:127.0.0.1,IP:10.0.0.1,IP:10.0.0.2,IP:10.0.0.3,DNS:connect.example,")
    assert "DNS:localhost" in extensions and "extendedKeyUsage=serverAuth" in extensions


def test_a_private_stack_gives_no_two_parts_the_same_port():
    """Ports are chosen before any part binds them: a run of ports for the brokers and one for the
    gates were once chosen overlapping (GATE_PORT refused: KAFKA_PORT's run had it)."""
    from stack.topology import free_port, free_port_run
    taken: set[int] = set()
    brokers = free_port_run(3, taken)
    chosen = [brokers, brokers + 1, brokers + 2] + [free_port(taken) for _ in range(200)]
    for _ in range(50):
        first = free_port_run(2, taken)
        chosen += [first, first + 1]
    assert len(chosen) == len(set(chosen)) == len(taken)
