"""The metrics ports, the exporter, and the consumer's numbers as Prometheus reads them (no servers)."""

import shutil
import socket
import urllib.request
from types import SimpleNamespace

import pytest
from prometheus_client import CollectorRegistry, Counter, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from bus.consumer import ConsumerStats
from catalog_svc import config as catalog_config
from catalog_svc.metrics import CatalogMetrics
from order_svc import config as order_config
from ordersync.config import HOST, Settings
from ordersync.serving import metrics
from stack.topology import Topology


def test_each_service_serves_metrics_on_its_grpc_port_plus_the_offset():
    assert order_config.load({"ORDER_PORT": "50052"}).metrics_port == 51052
    assert catalog_config.load({}).metrics_port == 51061
    assert catalog_config.load({"CATALOG_PORT": "7000", "METRICS_PORT_OFFSET": "5"}).metrics_port == 7005
    assert order_config.load({"METRICS_PORT_OFFSET": "0"}).metrics_port == 0  # no exporter
    # A process's own METRICS_PORT wins over the offset; it is not a shared setting.
    assert catalog_config.load({"METRICS_PORT": "9999", "METRICS_PORT_OFFSET": "0"}).metrics_port == 9999
    assert "METRICS_PORT" not in Settings().to_env() and Settings().to_env()["METRICS_PORT_OFFSET"] == "1000"


def free_port():
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def test_the_exporter_serves_its_registry_and_refuses_a_taken_port():
    registry = CollectorRegistry()
    Counter("ordersync_test_things", "things", registry=registry).inc(3)
    assert metrics.serve(0, registry) is None
    port = free_port()
    server = metrics.serve(port, registry)
    try:
        body = urllib.request.urlopen(f"http://{HOST}:{port}/metrics", timeout=5).read().decode()
        assert "ordersync_test_things_total 3.0" in body
        with pytest.raises(RuntimeError, match=f"cannot serve metrics on {HOST}:{port}.*METRICS_PORT"):
            metrics.serve(port, registry)
    finally:
        server.shutdown()
        server.server_close()


def test_the_consumers_counts_and_lag_are_read_at_each_scrape():
    measured = []
    consumer = SimpleNamespace(stats=ConsumerStats(),
                               lag=lambda: measured.append(1) or {("orders", 1): 4, ("orders", 0): 0})
    registry = CollectorRegistry(auto_describe=True)  # like the default one
    CatalogMetrics(registry).watch(consumer)
    assert measured == []  # registering does not ask Kafka
    consumer.stats.dead_lettered, consumer.stats.retried = 2, 7
    assert registry.get_sample_value("ordersync_events_dead_lettered_total") == 2
    assert registry.get_sample_value("ordersync_events_retried_total") == 7
    assert registry.get_sample_value("ordersync_consumer_lag", {"topic": "orders", "partition": "1"}) == 4
    families = {f.name: f for f in text_string_to_metric_families(generate_latest(registry).decode())}
    assert families["ordersync_consumer_lag"].type == "gauge"
    assert families["ordersync_events_dead_lettered"].type == "counter"


def test_a_private_stack_gives_each_service_a_free_metrics_port():
    topology = Topology.private(orders=2, catalogs=1, reap=False)  # starts and stops nothing
    try:
        ports = [int(part.env["METRICS_PORT"]) for part in topology.services]
        assert len(set(ports)) == len(topology.services) == 4  # a gate, a Catalog, two Orders
        assert not set(ports) & {part.port for part in topology.services}
    finally:
        shutil.rmtree(topology.settings.stack_dir)
