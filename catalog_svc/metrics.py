"""The Catalog service's Prometheus metrics (served by ordersync.serving.metrics.serve).

    ordersync_events_applied_total          order events that lowered the stock
    ordersync_events_duplicate_total        order events applied before, skipped
    ordersync_events_dead_lettered_total    messages sent to the consumer's dead-letter topic
    ordersync_events_retried_total          handling attempts that failed transiently (then retried)
    ordersync_event_handler_seconds         one handler call (a polled batch), success or not (histogram)
    ordersync_consumer_lag{topic,partition} messages not yet dealt with per assigned partition
    ordersync_consumer_serving              1, or 0 while the consumer is stuck retrying a message
"""

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily


class CatalogMetrics:
    def __init__(self, registry: CollectorRegistry = REGISTRY):
        self._registry = registry
        self.applied = Counter(
            "ordersync_events_applied", "Order events that lowered the stock", registry=registry)
        self.duplicates = Counter(
            "ordersync_events_duplicate", "Order events applied before (redelivered), skipped",
            registry=registry)
        self.trimmed = Counter(
            "ordersync_applied_orders_trimmed", "applied_orders rows deleted because Kafka can no longer "
            "deliver their events (catalog_svc/retention.py)", registry=registry)
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
