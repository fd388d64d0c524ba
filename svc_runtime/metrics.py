"""The services' Prometheus metrics, defined in one place, and the exporter that serves them.

Each service serves GET /metrics on 127.0.0.1:<metrics port> (Settings.metrics_port: its gRPC
port + METRICS_PORT_OFFSET, or METRICS_PORT), from the process's default registry, which also
holds prometheus_client's process_* and python_* metrics. Tests pass a registry of their own.

Order service (OrderMetrics):
    ordersync_create_order_total{code}      CreateOrder answers by gRPC status code (OK, INVALID_ARGUMENT, ...)
    ordersync_create_order_seconds          CreateOrder latency (histogram)
    ordersync_publish_seconds{result}       waiting for Kafka's acknowledgement (histogram), acked or failed
Catalog service (CatalogMetrics):
    ordersync_events_applied_total          order events that lowered the stock
    ordersync_events_duplicate_total        order events applied before, skipped
    ordersync_events_dead_lettered_total    messages sent to the consumer's dead-letter topic
    ordersync_events_retried_total          handling attempts that failed transiently (then retried)
    ordersync_event_handler_seconds         one handler call (a polled batch), success or not (histogram)
    ordersync_consumer_lag{topic,partition} messages not yet dealt with per assigned partition
    ordersync_consumer_serving              1, or 0 while the consumer is stuck retrying a message
Gate (GateMetrics):
    ordersync_gate_records_total{verdict}   records of the orders topic by verdict (accepted, duplicate, refused)
    ordersync_gate_refused_total{reason}    refused records by reason (NotAnOrderPlaced, BreaksEventRules, ...)
    ordersync_gate_retried_total            batch attempts that failed and were tried again
    ordersync_gate_lag{topic,partition}     records not yet decided per assigned partition
    ordersync_gate_serving                  1, or 0 while the gate is stuck retrying a batch
"""

import logging

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from svc_runtime.settings import HOST

log = logging.getLogger(__name__)


def serve(port: int, registry: CollectorRegistry = REGISTRY):
    """Serve `registry` on HOST:port/metrics from a daemon thread; returns the HTTP server, or
    None when port is 0. Raises RuntimeError when the port cannot be bound (like the gRPC port)."""
    if not port:
        log.info("metrics exporter off (METRICS_PORT_OFFSET=0)")
        return None
    try:
        server, _thread = start_http_server(port, addr=HOST, registry=registry)
    except OSError as e:
        raise RuntimeError(f"cannot serve metrics on {HOST}:{port} ({e}): set METRICS_PORT to a free port, "
                           "or METRICS_PORT_OFFSET=0 to turn the exporter off") from None
    log.info("metrics on http://%s:%d/metrics", HOST, port)
    return server


class OrderMetrics:
    def __init__(self, registry: CollectorRegistry = REGISTRY):
        self.create_order = Counter(
            "ordersync_create_order", "CreateOrder answers by gRPC status code (OK: placed, or a retry "
            "of a placed order)", ["code"], registry=registry)
        self.create_order_seconds = Histogram(
            "ordersync_create_order_seconds", "CreateOrder latency", registry=registry)
        self.publish_seconds = Histogram(
            "ordersync_publish_seconds", "Time from publishing an OrderPlaced event to Kafka's "
            "acknowledgement (result=acked) or giving up (result=failed)", ["result"], registry=registry)


class CatalogMetrics:
    def __init__(self, registry: CollectorRegistry = REGISTRY):
        self._registry = registry
        self.applied = Counter(
            "ordersync_events_applied", "Order events that lowered the stock", registry=registry)
        self.duplicates = Counter(
            "ordersync_events_duplicate", "Order events applied before (redelivered), skipped",
            registry=registry)
        self.handler_seconds = Histogram(
            "ordersync_event_handler_seconds", "One call of the order event handler (a polled batch), success or not",
            registry=registry)
        self.serving = Gauge(
            "ordersync_consumer_serving", "1, or 0 while the consumer is stuck retrying a message "
            "(the gRPC health says NOT_SERVING meanwhile)", registry=registry)
        self.serving.set(1)

    def watch(self, consumer) -> None:
        """Export a bus.consumer.EventConsumer's counts and lag, read at each scrape."""
        self._registry.register(_ConsumerCollector(consumer))


class _ConsumerCollector:
    """The consumer's own counts and lag (bus imports no prometheus), read when scraped; the
    lag is what the consumer's thread last measured, so a scrape never waits for Kafka."""

    def __init__(self, consumer):
        self._consumer = consumer

    def describe(self):  # the names, without reading the consumer
        return self._families()

    def collect(self):
        stats = self._consumer.stats
        dead_lettered, retried, lag = self._families(stats.dead_lettered, stats.retried)
        for (topic, partition), messages in sorted(self._consumer.lag().items()):
            lag.add_metric([topic, str(partition)], messages)
        return [dead_lettered, retried, lag]

    @staticmethod
    def _families(dead_lettered=0, retried=0):
        return [
            CounterMetricFamily("ordersync_events_dead_lettered",
                                "Messages sent to the consumer's dead-letter topic", value=dead_lettered),
            CounterMetricFamily("ordersync_events_retried",
                                "Handling attempts that failed transiently (the message is tried again)",
                                value=retried),
            GaugeMetricFamily("ordersync_consumer_lag", "Messages not yet dealt with per assigned partition: "
                              "high watermark minus the next offset to handle", labels=["topic", "partition"]),
        ]


class GateMetrics:
    def __init__(self, registry: CollectorRegistry = REGISTRY):
        self._registry = registry
        self.records = Counter(
            "ordersync_gate_records", "Records of the orders topic by verdict, counted once their "
            "transaction committed", ["verdict"], registry=registry)
        self.refused = Counter(
            "ordersync_gate_refused", "Refused records by reason (the dead letter's dlq.error.class)",
            ["reason"], registry=registry)
        self.serving = Gauge(
            "ordersync_gate_serving", "1, or 0 while the gate is stuck retrying a batch (or not started)",
            registry=registry)

    def watch(self, processor) -> None:
        """Export a bus.processor.ExactlyOnceProcessor's retries and lag, read at each scrape."""
        self._registry.register(_ProcessorCollector(processor))


class _ProcessorCollector:
    def __init__(self, processor):
        self._processor = processor

    def describe(self):
        return self._families()

    def collect(self):
        retried, lag = self._families(self._processor.stats.retried)
        for (topic, partition), records in sorted(self._processor.lag().items()):
            lag.add_metric([topic, str(partition)], records)
        return [retried, lag]

    @staticmethod
    def _families(retried=0):
        return [
            CounterMetricFamily("ordersync_gate_retried", "Batch attempts that failed and were tried again",
                                value=retried),
            GaugeMetricFamily("ordersync_gate_lag", "Records not yet decided per assigned partition",
                              labels=["topic", "partition"]),
        ]
