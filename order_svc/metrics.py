"""The Order service's Prometheus metrics (served by ordersync.serving.metrics.serve).

    ordersync_create_order_total{code}      CreateOrder answers by gRPC status code (OK, INVALID_ARGUMENT, ...)
    ordersync_create_order_seconds          CreateOrder latency (histogram)
    ordersync_publish_seconds{result}       waiting for Kafka's acknowledgement (histogram), acked or failed
"""

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram


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
