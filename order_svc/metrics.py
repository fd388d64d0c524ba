"""The Order service's Prometheus metrics (served by ordersync.serving.metrics.serve).

    ordersync_create_order_total{code}      CreateOrder answers by gRPC status code (OK, INVALID_ARGUMENT, ...)
    ordersync_create_order_seconds          CreateOrder latency (histogram)
    ordersync_publish_seconds{result}       waiting for Kafka's acknowledgement (histogram), acked or failed

The product view (order_svc/products.py), read at each scrape:

    ordersync_product_view_lag{topic,partition}         records behind the partition's high watermark
    ordersync_product_view_behind_seconds               how long ago the view last held all of the topic
                                                        (what PRODUCT_VIEW_MAX_BEHIND_S bounds; absent until ready)
    ordersync_product_view_newest_change_age_seconds    age of the newest change applied (its record timestamp)
    ordersync_product_view_products                     products in the view
    ordersync_product_view_ready                        1 once the topic was read to its end
    ordersync_product_view_applied_total                records applied (changes and tombstones)
    ordersync_product_view_undecodable_total            records that could not be decoded (logged, skipped)
"""

import time

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily


class OrderMetrics:
    def __init__(self, registry: CollectorRegistry = REGISTRY):
        self._registry = registry
        self.create_order = Counter(
            "ordersync_create_order", "CreateOrder answers by gRPC status code (OK: placed, or a retry "
            "of a placed order)", ["code"], registry=registry)
        self.create_order_seconds = Histogram(
            "ordersync_create_order_seconds", "CreateOrder latency", registry=registry)
        self.publish_seconds = Histogram(
            "ordersync_publish_seconds", "Time from publishing an OrderPlaced event to Kafka's "
            "acknowledgement (result=acked) or giving up (result=failed)", ["result"], registry=registry)

    def watch(self, view, wall_clock=time.time) -> None:
        """Export a bus.compacted_view.CompactedView, read at each scrape (never waiting for Kafka)."""
        self._registry.register(_ViewCollector(view, wall_clock))


class _ViewCollector:
    def __init__(self, view, wall_clock):
        self._view, self._wall_clock = view, wall_clock

    def describe(self):
        return self._families()

    def collect(self):
        view = self._view
        families = self._families(view.stats.applied, view.stats.undecodable)
        lag, behind, age, products, ready = families[:5]
        for partition, records in sorted(view.lag().items()):
            lag.add_metric([view.topic, str(partition)], records)
        behind_s = view.behind_s()
        if behind_s is not None:
            behind.add_metric([], behind_s)
        if view.stats.newest_change_ms is not None:
            age.add_metric([], max(0.0, self._wall_clock() - view.stats.newest_change_ms / 1000))
        products.add_metric([], len(view))
        ready.add_metric([], 1 if view.ready else 0)
        return families

    @staticmethod
    def _families(applied=0, undecodable=0):
        return [
            GaugeMetricFamily("ordersync_product_view_lag", "Records of the products topic not yet applied: "
                              "high watermark minus the view's position", labels=["topic", "partition"]),
            GaugeMetricFamily("ordersync_product_view_behind_seconds", "Seconds since the product view last "
                              "held everything of its topic (CreateOrder refuses beyond PRODUCT_VIEW_MAX_BEHIND_S)"),
            GaugeMetricFamily("ordersync_product_view_newest_change_age_seconds",
                              "Age of the newest product change the view applied (its record's timestamp)"),
            GaugeMetricFamily("ordersync_product_view_products", "Products in the view"),
            GaugeMetricFamily("ordersync_product_view_ready", "1 once the products topic was read to its end"),
            CounterMetricFamily("ordersync_product_view_applied", "Product records applied (changes and "
                                "tombstones)", value=applied),
            CounterMetricFamily("ordersync_product_view_undecodable", "Product records that could not be "
                                "decoded (logged and skipped; the product keeps its previous state)",
                                value=undecodable),
        ]
