"""The gate's Prometheus metrics (served by ordersync.serving.metrics.serve).

    ordersync_gate_records_total{verdict}   records of the orders topic by verdict (accepted, duplicate, refused)
    ordersync_gate_refused_total{reason}    refused records by reason (NotAnOrderPlaced, BreaksEventRules, ...)
    ordersync_gate_retried_total            batch attempts that failed and were tried again
    ordersync_gate_lag{topic,partition}     records not yet decided per assigned partition
    ordersync_gate_serving                  1, or 0 while the gate is stuck retrying a batch
"""

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from ordersync.gate import verdict


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
        # Every series there from the start, at 0: Prometheus's increase() cannot see the first
        # refusal of a series that appears with it (DeadLettersArriving would miss it).
        for outcome in (verdict.ACCEPTED, verdict.DUPLICATE, verdict.REFUSED):
            self.records.labels(outcome)
        for reason in (verdict.NOT_AN_EVENT, verdict.BREAKS_RULES, verdict.UNKNOWN_PRODUCT, verdict.ORDER_ID_REUSED):
            self.refused.labels(reason)

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
